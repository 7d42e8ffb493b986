"""The ingester's write-ahead log: acknowledged pushes survive a crash (docs/format/wal.md).

A push is logged as one CRC32C-checked frame that holds all its records. A torn tail then loses
at most the one push that was never acknowledged, and never part of a push. Checkpoints let old
segments be deleted, and replay rebuilds the ingester from the newest checkpoint plus the
segments after it.

Modules, each owning one concern, as Prometheus' ``tsdb/wlog`` and ``tsdb/record`` do:

- ``record``: the typed records and their byte layout (entries in a bulk, C-friendly layout);
- ``segment``: segment files, frames, the writer, the reader and torn-tail repair;
- ``log``: ``WAL``, the appending log with group-commit fsync and write-failure handling;
- ``checkpoint``: atomic checkpoints and deletion of the segments they cover;
- ``replay``: the records to re-apply on start, de-duplicated against the checkpoint.

Submodules are imported by their users (``from lokistack.wal import log``).
"""
