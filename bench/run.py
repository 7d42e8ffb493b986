"""Run every benchmark in bench/ and print one line per measurement.

A benchmark is a module ``bench/bench_<topic>.py`` with a function ``run() -> list[Measurement]``.
Benchmarks measure; they never assert a speed (tests do not time things). Usage:
``make bench`` or ``python bench/run.py [topic ...]``.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import platform
import sys

BENCH_DIR = pathlib.Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__)
    parser.add_argument("topics", nargs="*", help="run only these (e.g. push_decode)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(BENCH_DIR))
    modules = sorted(path.stem for path in BENCH_DIR.glob("bench_*.py"))
    selected = [m for m in modules if not args.topics or m.removeprefix("bench_") in args.topics]
    if not selected:
        print(f"bench: nothing matches {args.topics}; available: {modules}", file=sys.stderr)
        return 2
    print(
        f"# {platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()}, {platform.processor() or 'unknown cpu'}"
    )
    for name in selected:
        module = importlib.import_module(name)
        for measurement in module.run():
            print(f"{name.removeprefix('bench_'):<16} {measurement}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
