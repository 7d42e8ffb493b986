"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok managing fake nodes.

Nothing runs containers: kwok plays the kubelet, so Pods scheduled to its nodes are marked Running
and Ready. Everything else is the real thing: the API server with TLS, token authentication and
RBAC, the controllers that turn Deployments into ReplicaSets and Pods, StatefulSets into Pods and
PVCs, and the scheduler. PersistentVolumeClaims are provisioned by the controller manager's
built-in host-path provisioner (``--enable-hostpath-provisioner``) through the default
StorageClass ``standard``, so StatefulSets with volumeClaimTemplates get Bound claims.

Every port is picked free at start, so ``make cluster`` and a test run can share the machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import shutil
import ssl
import subprocess
import time
import urllib.request

from testinfra import binaries, pki, processes

NODE_COUNT = 3
NODE_ANNOTATION = "kwok.x-k8s.io/node"
STORAGE_CLASS = "standard"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
# kwok gives Pods addresses from this range. It is on loopback on purpose: a test can start a
# real lokistack process listening on a Pod's own IP, so the operator reaches "the ingester in
# that Pod" exactly as it would in a cluster. The price: Services get no EndpointSlices (the API
# rejects loopback endpoints; the controller manager logs it), which no test relies on.
POD_CIDR = "127.244.0.0/16"
STARTUP_TIMEOUT = 90.0
# Where kube-controller-manager's host-path provisioner creates volume directories.
HOSTPATH_PROVISIONER_DIR = pathlib.Path("/tmp/hostpath_pv")


def _node(index: int) -> dict[str, object]:
    name = f"kwok-node-{index}"
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": f"zone-{'abc'[index % 3]}",
                "type": "kwok",
            },
        },
        "spec": {"providerID": f"kwok://{name}"},
        "status": {"allocatable": resources, "capacity": resources},
    }


def _storage_class() -> dict[str, object]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


@dataclasses.dataclass
class ControlPlane:
    """The control plane's processes, files and addresses under one working directory."""

    workdir: pathlib.Path
    components: list[processes.ManagedProcess] = dataclasses.field(default_factory=list)
    """Started processes in start order."""
    credentials: pki.Credentials | None = None
    apiserver_port: int = 0

    @property
    def kubeconfig(self) -> pathlib.Path:
        return self.workdir / "kubeconfig"

    @property
    def log_dir(self) -> pathlib.Path:
        return self.workdir / "logs"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def state_file(self) -> pathlib.Path:
        return self.workdir / "state.json"

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        """Run the pinned kubectl against this control plane and return its stdout."""
        result = subprocess.run(
            [str(binaries.binary_path("kubectl")), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            check=False,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def _spawn(self, name: str, argv: list[str]) -> processes.ManagedProcess:
        process = processes.ManagedProcess(name, argv, self.log_dir / f"{name}.log")
        process.start()
        self.components.append(process)
        self._write_state()
        return process

    def _write_state(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "pids": {process.name: process.pid for process in self.components},
            "executables": {process.name: process.argv[0] for process in self.components},
        }
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def start(self) -> None:
        """Start every component and wait until three fake nodes are Ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        credentials = pki.create(self.workdir / "pki")
        self.credentials = credentials
        etcd_port = processes.free_port()
        self.apiserver_port = processes.free_port()

        etcd = self._spawn(
            "etcd",
            [
                str(binaries.binary_path("etcd")),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                "--listen-peer-urls=http://127.0.0.1:0",
                "--unsafe-no-fsync",
                "--auto-compaction-retention=1",
                "--quota-backend-bytes=2147483648",
                "--log-level=warn",
            ],
        )
        etcd.wait_ready(lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health"), STARTUP_TIMEOUT)

        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(binaries.binary_path("kube-apiserver")),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={self.workdir / 'apiserver'}",
                f"--tls-cert-file={credentials.serving_cert}",
                f"--tls-private-key-file={credentials.serving_key}",
                f"--client-ca-file={credentials.ca_cert}",
                f"--token-auth-file={credentials.token_file}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={credentials.service_account_public_key}",
                f"--service-account-signing-key-file={credentials.service_account_key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
            ],
        )
        context = ssl.create_default_context(cafile=str(credentials.ca_cert))
        apiserver.wait_ready(
            lambda: _http_ok(f"{self.server}/readyz", context, credentials.admin_token),
            STARTUP_TIMEOUT,
        )
        self.kubeconfig.write_text(pki.kubeconfig(credentials, self.server))

        self._spawn(
            "kube-controller-manager",
            [
                str(binaries.binary_path("kube-controller-manager")),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                f"--service-account-private-key-file={credentials.service_account_key}",
                f"--root-ca-file={credentials.ca_cert}",
                "--use-service-account-credentials=false",
                "--enable-hostpath-provisioner=true",
                f"--cluster-cidr={POD_CIDR}",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(binaries.binary_path("kube-scheduler")),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
            ],
        )
        stages = sorted(binaries.kwok_stage_dir().glob("*.yaml"))
        self._spawn(
            "kwok",
            [
                str(binaries.binary_path("kwok")),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}=fake",
                "--node-ip=127.0.0.1",
                f"--cidr={POD_CIDR}",
                "--node-lease-duration-seconds=40",
                *(f"--config={stage}" for stage in stages),
            ],
        )

        objects = [_node(index) for index in range(NODE_COUNT)] + [_storage_class()]
        self.kubectl(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
        )
        self._wait_nodes_ready()
        self._wait_default_service_account()

    def _wait_nodes_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            self._check_alive()
            nodes = json.loads(self.kubectl("get", "nodes", "-o", "json"))["items"]
            ready = [
                node
                for node in nodes
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in node.get("status", {}).get("conditions", [])
                )
            ]
            if len(ready) >= NODE_COUNT:
                return
            if time.monotonic() > deadline:
                raise processes.StartupError(
                    f"only {len(ready)} of {NODE_COUNT} kwok nodes became Ready; kwok log:\n"
                    + processes.log_tail(self.log_dir / "kwok.log")
                )
            time.sleep(0.5)

    def _wait_default_service_account(self) -> None:
        # Pods are rejected until the controller manager has created the namespace's
        # default ServiceAccount, so a cluster is not usable before that.
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            self._check_alive()
            try:
                self.kubectl("get", "serviceaccount", "default", "-n", "default")
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _check_alive(self) -> None:
        for process in self.components:
            if not process.running():
                raise processes.StartupError(
                    f"{process.name} exited; log {process.log_path}:\n"
                    + processes.log_tail(process.log_path)
                )

    def provisioned_volume_paths(self) -> list[pathlib.Path]:
        """Host directories the host-path provisioner made for this cluster's volumes."""
        volumes = json.loads(self.kubectl("get", "persistentvolumes", "-o", "json"))["items"]
        paths = [pathlib.Path(v["spec"].get("hostPath", {}).get("path", "")) for v in volumes]
        return [path for path in paths if path.parent == HOSTPATH_PROVISIONER_DIR]

    def stop(self) -> None:
        """Stop every process, last started first, and remove the volumes' host directories."""
        volume_paths: list[pathlib.Path] = []
        if self.components and all(process.running() for process in self.components):
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                volume_paths = self.provisioned_volume_paths()
        for path in volume_paths:
            shutil.rmtree(path, ignore_errors=True)
        for process in reversed(self.components):
            process.stop()
        self.components.clear()
        if self.state_file.exists():
            self.state_file.unlink()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def stop_from_state(workdir: pathlib.Path) -> list[str]:
    """Stop the processes a ``make cluster`` recorded in its state file; returns their names."""
    state_file = workdir / "state.json"
    if not state_file.exists():
        return []
    state = json.loads(state_file.read_text())
    volume_paths: list[pathlib.Path] = []
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired, FileNotFoundError):
        volume_paths = ControlPlane(workdir).provisioned_volume_paths()
    stopped: list[str] = []
    for name, pid in reversed(list(state["pids"].items())):
        # A pid from an old state file may have been reused by an unrelated process.
        if not processes.runs_executable(int(pid), state["executables"][name]):
            continue
        processes.stop_process_group(int(pid), grace=10.0)
        stopped.append(name)
    for path in volume_paths:
        shutil.rmtree(path, ignore_errors=True)
    state_file.unlink()
    return stopped


def _http_ok(url: str, context: ssl.SSLContext | None = None, token: str | None = None) -> bool:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=2, context=context) as response:
        return bool(response.status == 200)
