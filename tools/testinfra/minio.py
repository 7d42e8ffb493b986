"""A real MinIO server on loopback, single drive, for tests and ``make cluster``.

MinIO keeps its data in one directory ("single drive" mode), has its browser console and update
checks turned off, and listens on a free port. Buckets are created by the caller (Loki does not
create them either) with the S3 API.
"""

from __future__ import annotations

import dataclasses
import pathlib
import secrets
import urllib.request

from testinfra import binaries, processes

STARTUP_TIMEOUT = 60.0
REGION = "us-east-1"


@dataclasses.dataclass
class MinioServer:
    workdir: pathlib.Path
    access_key: str = "lokistack"
    secret_key: str = dataclasses.field(default_factory=lambda: secrets.token_hex(16))
    port: int = 0
    process: processes.ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` as the minio client and Lokistack's S3 config take it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def log_path(self) -> pathlib.Path:
        return self.workdir / "minio.log"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Keep the port across a stop and start, so clients see the same server come back.
        self.port = self.port or processes.free_port()
        self.process = processes.ManagedProcess(
            "minio",
            [
                str(binaries.binary_path("minio")),
                "server",
                str(self.workdir / "data"),
                "--address",
                self.endpoint,
                "--quiet",
            ],
            self.log_path,
            env={
                "MINIO_ROOT_USER": self.access_key,
                "MINIO_ROOT_PASSWORD": self.secret_key,
                "MINIO_BROWSER": "off",
                "MINIO_UPDATE": "off",
                "MINIO_REGION": REGION,
            },
        )
        self.process.start()
        try:
            self.process.wait_ready(self._healthy, STARTUP_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/minio/health/ready", timeout=2) as response:
            return bool(response.status == 200)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
