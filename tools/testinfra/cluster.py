"""``make cluster`` / ``make cluster-down``: a local control plane for a person with kubectl.

Usage (from the repository root, ``make`` passes these):
    python3 -m testinfra.cluster up   [--dir .cluster]
    python3 -m testinfra.cluster down [--dir .cluster]

``up`` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok in the
background, writes ``<dir>/kubeconfig`` and links the pinned kubectl as ``<dir>/bin/kubectl``.
The processes keep running after the command returns; their pids are in ``<dir>/state.json`` and
their logs in ``<dir>/logs/``. ``down`` stops every one of them.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys

from testinfra import binaries, controlplane


def up(workdir: pathlib.Path) -> int:
    if (workdir / "state.json").exists():
        print(
            f"cluster: already running (see {workdir / 'state.json'}); `make cluster-down` first",
            file=sys.stderr,
        )
        return 1
    # A fresh etcd and fresh certificates each time: an old kubeconfig must not half-work.
    for stale in ("etcd", "pki", "apiserver", "logs", "kubeconfig"):
        path = workdir / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    plane = controlplane.ControlPlane(workdir)
    plane.start()
    bin_dir = workdir / "bin"
    bin_dir.mkdir(exist_ok=True)
    kubectl_link = bin_dir / "kubectl"
    if kubectl_link.is_symlink() or kubectl_link.exists():
        kubectl_link.unlink()
    kubectl_link.symlink_to(binaries.binary_path("kubectl"))
    # The processes belong to their own sessions; dropping our handles leaves them running.
    plane.components.clear()
    print(
        f"cluster: control plane up at {plane.server} with {controlplane.NODE_COUNT} kwok nodes\n"
        f"  export KUBECONFIG={plane.kubeconfig}\n"
        f"  export PATH={bin_dir}:$PATH\n"
        f"  kubectl get nodes\n"
        f"logs: {plane.log_dir}/   stop: make cluster-down"
    )
    return 0


def down(workdir: pathlib.Path) -> int:
    stopped = controlplane.stop_from_state(workdir)
    if stopped:
        print(f"cluster: stopped {', '.join(stopped)}")
    else:
        print("cluster: nothing running")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m testinfra.cluster",
        description="Start or stop a local Kubernetes control plane (etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kwok with three fake nodes) on loopback.",
    )
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument(
        "--dir",
        type=pathlib.Path,
        default=pathlib.Path(".cluster"),
        help="working directory for state, logs and kubeconfig (default .cluster)",
    )
    args = parser.parse_args(argv)
    workdir: pathlib.Path = args.dir.resolve()
    if args.action == "up":
        return up(workdir)
    return down(workdir)


if __name__ == "__main__":
    sys.exit(main())
