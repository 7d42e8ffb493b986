"""Entry point of ``lokistack-operator``.

The reconciler (kopf handlers turning a LokiStack into ConfigMaps, Services, Deployments and
StatefulSets) is the subject of its own issue; until it lands this program parses its flags,
answers ``--help`` and says plainly that it cannot reconcile yet, instead of starting a kopf loop
that would watch a CRD nobody has installed.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lokistack-operator",
        description="Kubernetes operator for Lokistack: reconciles LokiStack resources "
        "(lokistacks.lokistack.dev/v1) into distributors, ingesters, queriers, query frontends "
        "and a compactor. See README.md and docs/architecture.md.",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch LokiStacks in this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: in-cluster or ~/.kube/config)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print(
        "lokistack-operator: the LokiStack reconciler is not built yet in this version; "
        "nothing to run",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
