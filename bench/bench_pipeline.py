"""How fast the log pipeline runs over decoded chunk blocks and lines.

Blocks of 256 KiB of ~150-byte log lines (the head block's cut size), decoded once. Measured:

- a rare literal (``|= "needle"``, in 0.1% of lines) and a common one (in ~50%), through
  ``Pipeline.process_block``: the bulk ``bytes.find`` pre-filter means non-matching lines cost
  no Python work;
- a regex whose required literal the pre-filter can use, and one it cannot (``(?i)``);
- per-line ``| json`` and ``| logfmt`` parsing, the per-entry floor of parser queries.

Throughput is over the lines' bytes (MB/s) and entries (lines/s).
"""

from __future__ import annotations

import json
import random

from lokistack.chunk import block
from lokistack.logql import syntax
from lokistack.logql.log import pipeline
from measure import Measurement, best_of

BLOCK_BYTES = 256 * 1024
BLOCKS = 8
STREAM = (("app", "bench"), ("pod", "pod-0"))


def _lines(rng: random.Random, count: int, kind: str) -> list[str]:
    words = [f"word{i}" for i in range(300)]
    levels = ["info", "warn", "error", "debug"]
    lines = []
    for i in range(count):
        level = rng.choice(levels)
        if kind == "json":
            record = {
                "ts": 1_700_000_000 + i,
                "level": level,
                "msg": " ".join(rng.choices(words, k=6)),
                "status": rng.choice([200, 200, 200, 404, 500]),
                "user": {"id": f"u{rng.randrange(1000)}", "region": "eu-west-1"},
            }
            lines.append(json.dumps(record, separators=(",", ":")))
        elif kind == "logfmt":
            msg = " ".join(rng.choices(words, k=6))
            lines.append(
                f"ts={1_700_000_000 + i} level={level} status={rng.choice([200, 404, 500])} "
                f'took={rng.randrange(1, 900)}ms msg="{msg}" caller=server.go:{rng.randrange(900)}'
            )
        else:
            text = " ".join(rng.choices(words, k=18))
            if i % 1000 == 7:
                text += " needle"
            lines.append(f"level={level} status={rng.choice([200, 404, 500])} {text}")
    return lines


def _blocks(kind: str) -> list[block.DecodedBlock]:
    rng = random.Random(42)
    decoded = []
    for _ in range(BLOCKS):
        lines: list[str] = []
        size = 0
        batch = _lines(rng, 4000, kind)
        while size < BLOCK_BYTES and batch:
            line = batch.pop()
            lines.append(line)
            size += len(line)
        timestamps = list(range(len(lines)))
        decoded.append(block.DecodedBlock(block.encode_payload(timestamps, lines, None)))
    return decoded


def _measure(name: str, query: str, blocks: list[block.DecodedBlock]) -> Measurement:
    stages = syntax.parse_expr(query).stages  # type: ignore[union-attr]
    pipe = pipeline.Pipeline.from_ast(stages)
    stream = pipe.for_stream(STREAM)

    def work() -> int:
        return sum(len(stream.process_block(decoded)) for decoded in blocks)

    entries = sum(len(decoded) for decoded in blocks)
    nbytes = sum(len(decoded.lines_buffer) for decoded in blocks)
    return Measurement(name, best_of(5, work), entries, "lines", nbytes)


def run() -> list[Measurement]:
    text_blocks = _blocks("text")
    json_blocks = _blocks("json")
    logfmt_blocks = _blocks("logfmt")
    selector = '{app="bench"}'
    return [
        _measure("|= rare literal (block pre-filter)", selector + ' |= "needle"', text_blocks),
        _measure("|= common literal", selector + ' |= "level=error"', text_blocks),
        _measure("|= a != b (two literals)", selector + ' |= "word1" != "word2"', text_blocks),
        _measure("|~ regex with required literal", selector + ' |~ "status=5[0-9]+ "', text_blocks),
        _measure("|~ (?i) regex, every line", selector + ' |~ "(?i)needle"', text_blocks),
        _measure("| json (every line)", selector + " | json", json_blocks),
        _measure("| json status, level (params)", selector + " | json status, level", json_blocks),
        _measure("| logfmt (every line)", selector + " | logfmt", logfmt_blocks),
        _measure(
            "| logfmt | status >= 500",
            selector + " | logfmt | status >= 500",
            logfmt_blocks,
        ),
    ]
