"""Entry point of ``lokistack-operator``: parse the flags, then run kopf with our handlers.

The operator runs standalone (one replica, no kopf peering), watches LokiStacks in the given
namespaces or in all of them, logs in with the official client's configuration (a kubeconfig
file, else the in-cluster service account) and applies objects with server-side apply as field
manager ``lokistack-operator``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Final

import kopf
from kubernetes import client as kube_client

from lokistack_operator import handlers, kube, manifests, reconcile, scaledown

DEFAULT_IMAGE: Final = "lokistack:latest"
LOG_LEVELS: Final = ("debug", "info", "warning", "error")


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lokistack-operator",
        description="Kubernetes operator for Lokistack: reconciles LokiStack resources "
        "(lokistacks.lokistack.dev/v1) into distributors, ingesters, queriers, query frontends "
        "and a compactor. See docs/operator.md.",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch LokiStacks in this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: in-cluster, else ~/.kube/config)"
    )
    parser.add_argument(
        "--image",
        default=os.environ.get("LOKISTACK_IMAGE") or DEFAULT_IMAGE,
        help="image of the Lokistack workloads (default: $LOKISTACK_IMAGE or %(default)s)",
    )
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint URL served by the operator (default: %(default)s)",
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    parser.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="default: %(default)s"
    )
    parser.add_argument(
        "--status-interval",
        type=_positive,
        default=float(os.environ.get("LOKISTACK_OPERATOR_STATUS_INTERVAL") or 30),
        help="seconds between status refreshes of each LokiStack (default: %(default)s)",
    )
    parser.add_argument(
        "--ingester-shutdown-timeout",
        type=_positive,
        default=float(os.environ.get("LOKISTACK_OPERATOR_INGESTER_SHUTDOWN_TIMEOUT") or 300),
        help="longest wait, in seconds, for one ingester to flush and leave the ring before a "
        "scale-down removes it (default: %(default)s)",
    )
    parser.add_argument(
        "--ingester-poll-interval",
        type=_positive,
        default=1.0,
        help="seconds between checks while an ingester flushes (default: %(default)s)",
    )
    return parser


def configure_logging(level: str, log_format: str) -> None:
    kopf.configure(
        debug=level == "debug",
        quiet=level in ("warning", "error"),
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger().setLevel(level.upper())


def build_context(args: argparse.Namespace) -> reconcile.Context:
    configuration = kube.load_configuration(args.kubeconfig)
    return reconcile.Context(
        kube=kube.Kube(kube_client.ApiClient(configuration)),
        settings=manifests.Settings(image=args.image),
        timing=scaledown.Timing(
            shutdown_timeout=args.ingester_shutdown_timeout,
            poll_interval=args.ingester_poll_interval,
        ),
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        ctx = build_context(args)
    except Exception as error:  # a bad kubeconfig or no cluster: say so, no traceback
        print(f"lokistack-operator: cannot load the Kubernetes configuration: {error}",
              file=sys.stderr)  # fmt: skip
        return 2
    registry = kopf.OperatorRegistry()
    handlers.register(registry, ctx, status_interval=args.status_interval)
    settings = kopf.OperatorSettings()
    handlers.configure_settings(settings)
    namespaces: list[str] = list(args.namespace)
    kopf.run(
        registry=registry,
        settings=settings,
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness or None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
