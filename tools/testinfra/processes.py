"""Background server processes for tests and ``make cluster``: start, wait, log, stop.

Each process runs in its own session (process group), writes stdout and stderr to one log file,
and is stopped with SIGTERM then SIGKILL to its whole group, so nothing it forked outlives it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

LOG_TAIL_LINES = 60


class StartupError(RuntimeError):
    """A process exited or did not become ready in time; the message carries its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel picks it; reuse races are rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def log_tail(path: pathlib.Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:])


@dataclasses.dataclass
class ManagedProcess:
    """One server process with its log file."""

    name: str
    argv: Sequence[str]
    log_path: pathlib.Path
    env: Mapping[str, str] | None = None
    cwd: pathlib.Path | None = None
    popen: subprocess.Popen[bytes] | None = dataclasses.field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = dict(os.environ)
        if self.env:
            environment.update(self.env)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=self.cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, probe: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
        """Poll ``probe`` until it returns true; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise StartupError(
                    f"{self.name} exited with {self.popen and self.popen.returncode} before it "
                    f"was ready; log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            with contextlib.suppress(OSError):
                if probe():
                    return
            if time.monotonic() > deadline:
                raise StartupError(
                    f"{self.name} was not ready after {timeout:.0f}s; log {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            time.sleep(interval)

    def stop(self, grace: float = 10.0) -> None:
        if self.popen is None:
            return
        stop_process_group(self.popen.pid, grace, self.popen)


def runs_executable(pid: int, executable: str) -> bool:
    """Whether process ``pid`` exists and was started from ``executable``."""
    try:
        argv0 = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return argv0.decode(errors="replace") == executable


def stop_process_group(
    pid: int, grace: float, popen: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL it after ``grace`` seconds."""

    def alive() -> bool:
        if popen is not None:
            return popen.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    # The group may hold children even after the leader exited; kill whatever is left.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    if popen is not None:
        popen.wait()
