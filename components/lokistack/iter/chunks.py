"""A log query's pipeline run over one chunk: what ingesters and the store path share.

An ingester reads its in-memory chunks and a querier reads chunks fetched from the object store;
both are :class:`~lokistack.chunk.chunk.MemChunk` objects, and both answer a query the same way.
Cut blocks go through :meth:`~lokistack.logql.log.pipeline.StreamPipeline.process_block`, which
runs literal line filters once over a whole decompressed block (``bytes.find``), so a line that
does not match costs no Python object. The head block (at most one block size of uncompressed
entries) and chunks whose blocks overlap in time (out-of-order writes) are read entry by entry.

Results are per chunk and in the query's direction; callers merge chunks, streams and replicas
with :mod:`lokistack.iter.entries`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

from lokistack.chunk import block as chunk_block
from lokistack.chunk import chunk as chunk_mod
from lokistack.iter import entries
from lokistack.logql.log import pipeline as log_pipeline
from lokistack.model import labels as model_labels

ProcessedEntry = tuple[int, str, model_labels.Labels]
"""``(ts, line, labels)`` of an entry that passed the pipeline."""


@dataclasses.dataclass(slots=True)
class ScanStats:
    """What a scan read, for the query's ``stats``."""

    lines: int = 0
    bytes: int = 0
    post_filter_lines: int = 0

    def merge(self, other: ScanStats) -> None:
        self.lines += other.lines
        self.bytes += other.bytes
        self.post_filter_lines += other.post_filter_lines


def _blocks_in_order(
    chunk: chunk_mod.MemChunk, from_ns: int, through_ns: int
) -> list[chunk_block.Block] | None:
    """The cut blocks that overlap the range, or ``None`` when they overlap each other (or the
    head), so that reading them one after another would not be in time order."""
    blocks = [b for b in chunk.blocks if b.overlaps(from_ns, through_ns)]
    head = chunk.head
    spans = [(b.mint, b.maxt) for b in blocks]
    if len(head) and head.mint < through_ns and head.maxt >= from_ns:
        spans.append((head.mint, head.maxt))
    if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
        return None
    return blocks


def query_chunk(  # noqa: PLR0917 - one scan's parameters, called in hot loops
    chunk: chunk_mod.MemChunk,
    stream: log_pipeline.StreamPipeline,
    from_ns: int,
    through_ns: int,
    direction: entries.Direction,
    stats: ScanStats,
) -> list[ProcessedEntry]:
    """The entries of ``chunk`` in ``[from_ns, through_ns)`` that pass the pipeline, in
    ``direction`` order."""
    if through_ns <= from_ns:
        return []
    backward = direction == "backward"
    blocks = _blocks_in_order(chunk, from_ns, through_ns)
    if blocks is None:
        found = _per_entry(chunk.iterate(from_ns, through_ns, direction), stream, stats)
        stats.post_filter_lines += len(found)
        return found
    out: list[ProcessedEntry] = []
    for decoded, indexes in _scanned_blocks(blocks, from_ns, through_ns, stats):
        out.extend(stream.process_block(decoded, indexes))
    head_entries = chunk.head.entries(from_ns, through_ns, "forward")
    out.extend(_per_entry(head_entries, stream, stats))
    stats.post_filter_lines += len(out)
    if backward:
        out.reverse()
    return out


def _scanned_blocks(
    blocks: list[chunk_block.Block], from_ns: int, through_ns: int, stats: ScanStats
) -> Iterator[tuple[chunk_block.DecodedBlock, range]]:
    """Each block decoded with its entries in the range (none: skipped), counted as read."""
    for blk in blocks:
        decoded = blk.decode()
        indexes = decoded.indexes_in_range(from_ns, through_ns)
        if not indexes:
            continue
        offsets = decoded.line_offsets
        stats.lines += len(indexes)
        stats.bytes += offsets[indexes.stop] - offsets[indexes.start]
        yield decoded, indexes


def _per_entry(
    selected: Iterator[chunk_block.Entry],
    stream: log_pipeline.StreamPipeline,
    stats: ScanStats,
) -> list[ProcessedEntry]:
    out: list[ProcessedEntry] = []
    process = stream.process
    for ts, line, metadata in selected:
        stats.lines += 1
        stats.bytes += len(line) if line.isascii() else _utf8_len(line)
        result = process(ts, line, metadata)
        if result is not None:
            out.append((ts, result[0], result[1]))
    return out


SampleRow = tuple[model_labels.Labels, int, float]
"""``(labels, ts, value)``: one line's sample."""


def chunk_samples(  # noqa: PLR0917
    chunk: chunk_mod.MemChunk,
    stream: log_pipeline.StreamPipeline,
    unwrap: bool,
    from_ns: int,
    through_ns: int,
    stats: ScanStats,
) -> list[SampleRow]:
    """The per-line samples of ``chunk`` in ``[from_ns, through_ns)``, in time order.

    Without ``unwrap`` the value is the processed line's length in UTF-8 bytes (the count
    functions ignore it); with it, the extracted value (see
    :meth:`~lokistack.logql.log.pipeline.StreamPipeline.extract_sample`).
    """
    if not unwrap:
        return _line_size_samples(chunk, stream, from_ns, through_ns, stats)
    out: list[SampleRow] = []
    extract = stream.extract_sample
    for ts, line, metadata in chunk.iterate(from_ns, through_ns, "forward"):
        stats.lines += 1
        stats.bytes += len(line) if line.isascii() else _utf8_len(line)
        sample = extract(ts, line, metadata)
        if sample is not None:
            out.append((sample[1], ts, sample[0]))
    stats.post_filter_lines += len(out)
    return out


def _line_size_samples(
    chunk: chunk_mod.MemChunk,
    stream: log_pipeline.StreamPipeline,
    from_ns: int,
    through_ns: int,
    stats: ScanStats,
) -> list[SampleRow]:
    """Samples valued at the processed line's UTF-8 size; a cut block whose lines the pipeline
    leaves alone is measured from its offsets, without a string per line."""
    blocks = _blocks_in_order(chunk, from_ns, through_ns) if from_ns < through_ns else None
    if blocks is None:
        return _sized(query_chunk(chunk, stream, from_ns, through_ns, "forward", stats))
    out: list[SampleRow] = []
    for decoded, indexes in _scanned_blocks(blocks, from_ns, through_ns, stats):
        sized = stream.block_line_sizes(decoded, indexes)
        out.extend(_sized(stream.process_block(decoded, indexes)) if sized is None else sized)
    head_entries = chunk.head.entries(from_ns, through_ns, "forward")
    out.extend(_sized(_per_entry(head_entries, stream, stats)))
    stats.post_filter_lines += len(out)
    return out


def _sized(rows: list[ProcessedEntry]) -> list[SampleRow]:
    return [
        (labels, ts, float(len(line) if line.isascii() else _utf8_len(line)))
        for ts, line, labels in rows
    ]


def _utf8_len(line: str) -> int:
    return len(line.encode("utf-8", "surrogateescape"))
