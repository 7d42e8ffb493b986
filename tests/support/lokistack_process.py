"""Run ``lokistack`` as a separate local process, the way a Pod would run it.

Kubernetes here runs no containers, so end-to-end and failure tests start the components as
processes with a config file, on free loopback ports, and talk to them over HTTP and gRPC.
"""

from __future__ import annotations

import dataclasses
import pathlib
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import yaml
from lokistack import config
from testinfra import processes

LOKISTACK = pathlib.Path(sys.executable).parent / "lokistack"


def deep_merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclasses.dataclass
class LokistackProcess:
    """One lokistack process; ``settings`` are YAML config keys laid over test defaults."""

    name: str
    workdir: pathlib.Path
    settings: Mapping[str, Any]
    env: Mapping[str, str] | None = None
    http_port: int = 0
    grpc_port: int = 0
    process: processes.ManagedProcess | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = self.http_port or processes.free_port()
        self.grpc_port = self.grpc_port or processes.free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def config_path(self) -> pathlib.Path:
        return self.workdir / "config.yaml"

    @property
    def log_path(self) -> pathlib.Path:
        return self.workdir / "lokistack.log"

    def render_config(self) -> str:
        data = self.workdir / "data"
        base: dict[str, Any] = {
            "server": {
                "http_listen_address": "127.0.0.1",
                "http_listen_port": self.http_port,
                "grpc_listen_address": "127.0.0.1",
                "grpc_listen_port": self.grpc_port,
                "log_format": "json",
                "graceful_shutdown_timeout": "2s",
            },
            "storage": {"filesystem": {"directory": str(data / "objects")}},
            "ingester": {"wal": {"dir": str(data / "wal")}, "index_dir": str(data / "index")},
            "querier": {"index_cache_dir": str(data / "index-cache")},
            "compactor": {"working_directory": str(data / "compactor")},
            "ring": {"instance_addr": "127.0.0.1", "instance_id": self.name},
            "distributor": {"ring": {"instance_addr": "127.0.0.1", "instance_id": self.name}},
        }
        text = yaml.safe_dump(deep_merge(base, self.settings), sort_keys=False)
        config.parse(text, str(self.config_path))  # fail here, not in the child, on a bad key
        return text

    def start(self, wait_ready: bool = True, timeout: float = 30.0) -> None:
        self.config_path.write_text(self.render_config())
        self.process = processes.ManagedProcess(
            self.name,
            [str(LOKISTACK), f"--config.file={self.config_path}"],
            self.log_path,
            env=self.env,
            cwd=self.workdir,
        )
        self.process.start()
        probe = self.is_ready if wait_ready else self.is_serving
        self.process.wait_ready(probe, timeout)

    def is_serving(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/metrics", timeout=2) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError:
            return True

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ready", timeout=2) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to leave the ring."""
        if self.process is not None and self.process.popen is not None:
            self.process.popen.send_signal(signal.SIGKILL)
            self.process.popen.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: a graceful shutdown; returns the exit code."""
        assert self.process is not None and self.process.popen is not None
        self.process.popen.send_signal(signal.SIGTERM)
        return self.process.popen.wait(timeout)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=10)

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def metric(self, name: str, /, **labels: str) -> float:
        """Sum of a metric's samples matching ``labels`` on the process's /metrics."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            metric_name, _, label_text = series.partition("{")
            if metric_name != name:
                continue
            if all(f'{key}="{val}"' in label_text for key, val in labels.items()):
                total += float(value)
        return total
