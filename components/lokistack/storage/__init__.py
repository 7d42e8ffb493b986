"""Object storage and the index: where flushed chunks live and how queriers find them.

Layout and semantics are specified in docs/format/storage.md (object stores, chunk keys) and
docs/format/index.md (the per-tenant, per-day SQLite index). Import the modules and qualify names:

- :mod:`~lokistack.storage.objstore`: the ``ObjectStore`` protocol, its errors and metrics;
- :mod:`~lokistack.storage.filesystem`, :mod:`~lokistack.storage.s3`: the two implementations,
  and :mod:`~lokistack.storage.factory` to open the one the config names;
- :mod:`~lokistack.storage.chunk_keys`, :mod:`~lokistack.storage.chunk_store`: chunk objects;
- :mod:`~lokistack.storage.index_format`: schema, periods and keys of index files;
- :mod:`~lokistack.storage.index_head`, :mod:`~lokistack.storage.index_shipper`: the ingester's
  side (record flushed chunks, seal, upload);
- :mod:`~lokistack.storage.index_reader`: the querier's side (match series, list chunk refs).

Nothing here imports a component: ingesters, queriers and the compactor depend on this package,
never the other way round.
"""
