"""Build the pinned test infrastructure into the cache, skipping what is already there.

Usage: ``python3 -m testinfra.build [TOOL ...]`` from ``tools/`` (``make tools`` does this).

Builds run one after another with Go's default parallelism: the Kubernetes link step alone needs
a few GiB, and the machine has two cores. Each tool is built into a temporary directory and moved
into place only when every binary of it is there, so an interrupted build is simply redone.
Module downloads and the Go build cache live under the same cache root, so a rebuild after a pin
change recompiles only what changed.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from testinfra import binaries

# The kwok controller has no built-in stages; these are the ones kwokctl uses by default.
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


def go_environment() -> dict[str, str]:
    root = binaries.cache_root() / "go"
    env = dict(os.environ)
    env.update(
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOFLAGS="-trimpath -buildvcs=false -mod=readonly",
        GOMODCACHE=str(root / "mod"),
        GOCACHE=str(root / "build"),
    )
    return env


def go_modcache(env: dict[str, str]) -> pathlib.Path:
    return pathlib.Path(env["GOMODCACHE"])


def build_tool(tool: binaries.Tool, env: dict[str, str]) -> float:
    """Build every binary of ``tool`` into its cache directory; returns seconds taken."""
    started = time.monotonic()
    tool.install_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{tool.name}-", dir=tool.install_dir.parent))
    try:
        ldflags = " ".join(("-s", "-w", *tool.ldflags))
        for package, binary in zip(tool.packages, tool.binaries, strict=True):
            print(f"build: {tool.name} {tool.version}: go build {package}", flush=True)
            subprocess.run(
                ["go", "build", "-ldflags", ldflags, "-o", str(staging / binary), package],
                cwd=tool.module_dir,
                env=env,
                check=True,
            )
        if tool.name == "kwok":
            copy_kwok_stages(env, tool.version, staging / "stages")
        (staging / binaries.COMPLETE_MARKER).write_text(f"{tool.name} {tool.version}\n")
        if tool.install_dir.exists():
            shutil.rmtree(tool.install_dir)
        staging.rename(tool.install_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return time.monotonic() - started


def copy_kwok_stages(env: dict[str, str], version: str, target: pathlib.Path) -> None:
    source = go_modcache(env) / f"sigs.k8s.io/kwok@{version}" / "kustomize" / "stage"
    target.mkdir(parents=True)
    for stage in KWOK_STAGES:
        shutil.copyfile(source / stage, target / stage.replace("/", "_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m testinfra.build",
        description="Build the pinned test infrastructure (etcd, Kubernetes, kwok, MinIO, helm) "
        "into the cache ($LOKISTACK_CACHE, default ~/.cache/lokistack), skipping cached tools.",
    )
    parser.add_argument("tools", nargs="*", help="tools to build (default: all)")
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    args = parser.parse_args(argv)

    if shutil.which("go") is None:
        print("build: `go` is not on PATH; install Go 1.26+ (see README)", file=sys.stderr)
        return 2
    known = {tool.name: tool for tool in binaries.all_tools()}
    unknown = sorted(set(args.tools) - known.keys())
    if unknown:
        parser.error(f"unknown tools {unknown}; known: {sorted(known)}")
    selected = [known[name] for name in args.tools] if args.tools else list(known.values())

    env = go_environment()
    total = time.monotonic()
    for tool in selected:
        if tool.is_installed() and not args.force:
            print(f"build: {tool.name} {tool.version}: cached in {tool.install_dir}")
            continue
        seconds = build_tool(tool, env)
        print(f"build: {tool.name} {tool.version}: built in {seconds:.0f}s", flush=True)
    print(f"build: done in {time.monotonic() - total:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
