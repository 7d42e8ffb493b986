"""The ``lokistack`` command: flags, config loading and the hand-over to the selected target.

As with Loki's ``-target``, one program runs any component, so the same container image serves
every Deployment and StatefulSet the operator creates.  Flags use Loki's dotted spelling
(``--config.file``, ``--log.level``), and Loki's single-dash form (``-config.file=x``) is accepted
too, so commands copied from Loki manifests keep working.

Everything here is argument handling and reporting; the config itself is checked by
:mod:`lokistack.config`, and :func:`start` is the one place that will start the components.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence

import lokistack
from lokistack import config

PROG = "lokistack"

_DESCRIPTION = """\
Lokistack: a log aggregation system with Grafana Loki's architecture and HTTP APIs.
Any Loki client can push to it and Grafana's Loki data source can query it.
One program runs every component; --target selects which."""

_EPILOG = f"""\
targets:
  all             every component in one process, with a local filesystem store (the default)
  distributor     push API: validates, rate-limits and replicates streams to ingesters
  ingester        keeps recent streams in memory with a WAL, flushes chunks to the object store
  querier         runs LogQL over ingesters and the object store; pulls work from the frontend
  query-frontend  query API: splits queries by time and queues them fairly per tenant
  compactor       merges index files and applies retention

configuration:
  Settings come from the YAML file given with --config.file; flags override the file, and
  every key not set keeps its default (run --print-config-defaults to see them all). Any key
  can be set with --set, e.g. --set ingester.chunk_encoding=zstd. Per-tenant overrides of
  the limits block live in the runtime-config file (--runtime-config.file). Loki-style
  single-dash flags (-config.file=x) work too.

examples:
  {PROG} --config.file=examples/local.yaml
  {PROG} --config.file=config.yaml --target=ingester --log.level=debug
  {PROG} --config.file=config.yaml --print-config

Every key, its default and meaning: docs/configuration.md. Getting started: README.md."""

# Named flags and the config key each one sets.  They are applied after --set, so they win.
_FLAG_KEYS: dict[str, str] = {
    "target": "target",
    "auth_enabled": "auth_enabled",
    "runtime_config_file": "runtime_config.file",
    "log_level": "server.log_level",
    "log_format": "server.log_format",
    "http_listen_port": "server.http_listen_port",
    "grpc_listen_port": "server.grpc_listen_port",
}


def version() -> str:
    """The installed distribution's version, or the package's own when run from a checkout."""
    try:
        return importlib.metadata.version("lokistack")
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(lokistack, "__version__", "unknown (not installed)"))


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    # Accept the flag spelling of a key (server.http-listen-port) as well as the YAML one.
    return key.strip().replace("-", "_"), value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, kept separate so tests and docs can inspect the flags."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    files = parser.add_argument_group("configuration files")
    files.add_argument(
        "--config.file", dest="config_file", metavar="PATH", help="YAML config file to load"
    )
    files.add_argument(
        "--runtime-config.file",
        dest="runtime_config_file",
        metavar="PATH",
        help="YAML file with per-tenant limit overrides (runtime_config.file)",
    )
    files.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="set any config key, e.g. limits.ingestion_rate_mb=8 (repeatable)",
    )
    common = parser.add_argument_group("common settings (override the file)")
    common.add_argument(
        "--target",
        metavar="TARGET",
        help=f"component to run: {', '.join(config.TARGETS)} (target; default all)",
    )
    common.add_argument(
        "--auth.enabled",
        dest="auth_enabled",
        nargs="?",
        const="true",
        metavar="BOOL",
        help="require X-Scope-OrgID; when off every request is tenant 'fake' (auth_enabled)",
    )
    common.add_argument(
        "--log.level", dest="log_level", metavar="LEVEL", help="debug, info, warn or error"
    )
    common.add_argument(
        "--log.format",
        dest="log_format",
        metavar="FORMAT",
        help="auto, json or logfmt; auto is JSON unless stderr is a terminal",
    )
    common.add_argument(
        "--server.http-listen-port",
        dest="http_listen_port",
        metavar="PORT",
        help="HTTP port for the push, query and operations APIs (default 3100)",
    )
    common.add_argument(
        "--server.grpc-listen-port",
        dest="grpc_listen_port",
        metavar="PORT",
        help="gRPC port between components (default 9095)",
    )
    actions = parser.add_argument_group("actions")
    actions.add_argument(
        "--print-config-defaults",
        action="store_true",
        help="print every key with its default as YAML, and exit",
    )
    actions.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective config (file + flags, secrets redacted) as YAML, and exit",
    )
    actions.add_argument("--version", action="version", version=f"{PROG} {version()}")
    return parser


def _loki_style(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """Turn Loki's single-dash long flags (``-config.file=x``) into argparse's ``--`` form."""
    long_flags = {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    out: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[index:])
        name = arg.partition("=")[0]
        is_single_dash = arg.startswith("-") and not arg.startswith("--")
        out.append("-" + arg if is_single_dash and "-" + name in long_flags else arg)
    return out


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides = dict(args.sets)
    for dest, key in _FLAG_KEYS.items():
        value = getattr(args, dest)
        if value is not None:
            overrides[key] = value
    return overrides


def _load(args: argparse.Namespace) -> config.Config:
    """The effective config; the runtime-config file is checked now so a bad one fails early."""
    cfg = config.load(args.config_file, _overrides(args))
    if cfg.runtime_config.file:
        config.load_runtime_config(cfg.runtime_config.file, cfg.limits)
    return cfg


def start(cfg: config.Config) -> int:
    """Run the configured target until it stops, and return the process's exit status."""
    # Imported here so that --help and --print-config do not pay for gRPC and aiohttp.
    from lokistack import modules  # noqa: PLC0415

    if cfg.target not in modules.IMPLEMENTED_TARGETS:
        print(
            f"{PROG}: target {cfg.target} is not implemented yet in this build; "
            "config is valid (see docs/configuration.md)",
            file=sys.stderr,
        )
        return 1
    return modules.run(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lokistack`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(_loki_style(sys.argv[1:] if argv is None else argv, parser))
    except SystemExit as exit_:  # --help and --version (0), usage errors (2)
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    if args.print_config_defaults:
        sys.stdout.write(config.to_yaml(config.Config()))
        return 0
    try:
        cfg = _load(args)
    except config.ConfigError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    if args.print_config:
        sys.stdout.write(config.to_yaml(cfg, redact=True))
        return 0
    return start(cfg)
