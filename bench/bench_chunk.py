"""How fast chunks are written and read: the ingester's and the querier's per-entry floor.

100,000 realistic ~150-byte log lines (logfmt-style, words from a 500-word vocabulary, request
ids, durations) with increasing nanosecond timestamps. Measured:

- appending them to a snappy ``MemChunk`` with the default 256 KiB block size (cuts included),
  in order and with 10% of entries out of order; the head block's memory per entry;
- ``encode_block`` / ``decode_block`` per codec over 256 KiB blocks (MB/s of line bytes, and
  the compression ratio of the whole payload in the name);
- iterating every entry of a decoded chunk, and ``find_literal`` over decoded blocks.
"""

from __future__ import annotations

import random
import tracemalloc

from lokistack.chunk import block, chunk, codec, head
from measure import Measurement, best_of

ENTRIES = 100_000
BLOCK_SIZE = 262_144
_LEVELS = ["info"] * 6 + ["debug"] * 3 + ["warn", "error"]
_COMPONENTS = ["api", "auth", "db", "cache", "scheduler", "worker", "ingest", "gateway"]


def _lines(count: int) -> list[str]:
    rng = random.Random(7)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(500)
    ]
    lines = []
    for i in range(count):
        message = " ".join(rng.choices(words, k=rng.randint(4, 9)))
        line = (
            f"ts=2024-05-01T12:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z "
            f"level={rng.choice(_LEVELS)} component={rng.choice(_COMPONENTS)} "
            f'msg="{message}" request_id={rng.getrandbits(64):016x} '
            f"duration={rng.randint(1, 5000)}ms status={rng.choice((200, 200, 200, 404, 500))}"
        )
        lines.append(line[:150].ljust(150, "."))
    return lines


def _timestamps(count: int, out_of_order: float) -> list[int]:
    rng = random.Random(11)
    base = 1_714_564_800_000_000_000
    stamps = [base + i * 1_000_000 + rng.randrange(1000) for i in range(count)]
    for i in range(count):
        if rng.random() < out_of_order:
            stamps[i] -= rng.randrange(1, 60_000) * 1_000_000
    return stamps


def _append_all(timestamps: list[int], lines: list[str]) -> chunk.MemChunk:
    memchunk = chunk.MemChunk(codec.Encoding.SNAPPY, block_size=BLOCK_SIZE, target_size=0)
    append = memchunk.append
    for ts, line in zip(timestamps, lines, strict=True):
        append(ts, line)
    return memchunk


def _head_bytes_per_entry(timestamps: list[int], lines: list[str]) -> float:
    """Memory a head adds per entry, not counting the line strings (the push request already
    holds those; the head keeps references)."""
    count = 1700  # about one 256 KiB block of 150-byte lines
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    current = head.HeadBlock()
    for ts, line in zip(timestamps[:count], lines[:count], strict=True):
        current.append(ts, line)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / count


def _blocks(lines: list[str], timestamps: list[int]) -> list[tuple[list[int], list[str]]]:
    per_block = BLOCK_SIZE // 150
    return [
        (timestamps[i : i + per_block], lines[i : i + per_block])
        for i in range(0, len(lines), per_block)
    ]


def run() -> list[Measurement]:
    lines = _lines(ENTRIES)
    line_bytes = sum(map(len, lines))
    in_order = _timestamps(ENTRIES, 0.0)
    shuffled = _timestamps(ENTRIES, 0.1)
    per_entry = _head_bytes_per_entry(in_order, lines)
    results = [
        Measurement(
            f"append snappy MemChunk (head {per_entry:.0f} B/entry)",
            best_of(3, lambda: _append_all(in_order, lines)),
            ENTRIES,
            "entries",
            line_bytes,
        ),
        Measurement(
            "append snappy MemChunk, 10% out of order",
            best_of(3, lambda: _append_all(shuffled, lines)),
            ENTRIES,
            "entries",
            line_bytes,
        ),
    ]

    blocks = _blocks(lines, in_order)
    for encoding in codec.Encoding:
        encoded: list[block.EncodedBlock] = []

        def encode(
            encoding: codec.Encoding = encoding, out: list[block.EncodedBlock] = encoded
        ) -> None:
            out[:] = [block.encode_sorted(ts, part, None, encoding) for ts, part in blocks]

        def decode(
            encoding: codec.Encoding = encoding, out: list[block.EncodedBlock] = encoded
        ) -> None:
            for item in out:
                block.decode_block(item.data, encoding, item.crc)

        encode_seconds = best_of(3, encode)
        ratio = sum(e.uncompressed_size for e in encoded) / sum(e.compressed_size for e in encoded)
        results.append(
            Measurement(
                f"encode_block {encoding.value} (ratio {ratio:.2f})",
                encode_seconds,
                ENTRIES,
                "entries",
                line_bytes,
            )
        )
        results.append(
            Measurement(
                f"decode_block {encoding.value}", best_of(3, decode), ENTRIES, "entries", line_bytes
            )
        )

    memchunk = _append_all(in_order, lines)
    memchunk.close()
    stored = chunk.MemChunk.decode(memchunk.encode())

    def iterate_all() -> int:
        return sum(1 for _ in stored.iterate(-(1 << 63), 1 << 63))

    results.append(
        Measurement(
            "decode chunk + iterate every entry",
            best_of(3, iterate_all),
            ENTRIES,
            "entries",
            line_bytes,
        )
    )
    decoded = [b.decode() for b in stored.blocks]
    for label, needle in (
        ("rare", b"request_id=00"),
        ("absent", b"no such text"),
        ("common", b"level=info"),
    ):

        def search(needle: bytes = needle) -> int:
            return sum(len(d.find_literal(needle)) for d in decoded)

        hits = search()
        results.append(
            Measurement(
                f"find_literal {label} ({hits / ENTRIES:.1%} match)",
                best_of(5, search),
                ENTRIES,
                "lines",
                line_bytes,
            )
        )
    return results
