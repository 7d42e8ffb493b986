"""Where the test infrastructure's binaries live, and how each is built.

The binaries (etcd, the Kubernetes control plane, kwok, MinIO, helm) are built from the pinned
wrapper Go modules under ``tools/go/`` into a cache outside the repository, one directory per
tool and version, so a new pin never reuses an old build and an old pin survives a checkout of an
older commit. Every binary can instead come from an existing file named by an environment
variable (``LOKISTACK_BIN_<NAME>``, e.g. ``LOKISTACK_BIN_KUBE_APISERVER=/usr/local/bin/...``).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

TOOLS_DIR = pathlib.Path(__file__).resolve().parent.parent
GO_MODULES_DIR = TOOLS_DIR / "go"
VERSIONS_FILE = TOOLS_DIR / "versions.env"
COMPLETE_MARKER = ".complete"


def cache_root() -> pathlib.Path:
    """The cache directory: ``$LOKISTACK_CACHE`` or ``~/.cache/lokistack``."""
    configured = os.environ.get("LOKISTACK_CACHE")
    if configured:
        return pathlib.Path(configured).expanduser()
    return pathlib.Path.home() / ".cache" / "lokistack"


def pinned_versions() -> dict[str, str]:
    """Parse ``tools/versions.env`` (``NAME=version`` lines, ``#`` comments)."""
    versions: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, value = line.partition("=")
        versions[name.strip()] = value.strip()
    return versions


@dataclasses.dataclass(frozen=True)
class Tool:
    """One wrapper Go module and the binaries built from it."""

    name: str
    """Directory under tools/go/ and key in versions.env (upper-cased)."""
    packages: tuple[str, ...]
    """Go main packages; each binary is named after the last path element."""
    ldflags: tuple[str, ...] = ()
    binary_names: tuple[str, ...] = ()
    """Binary names when they differ from the last path element of the package."""

    @property
    def version(self) -> str:
        return pinned_versions()[self.name.upper()]

    @property
    def module_dir(self) -> pathlib.Path:
        return GO_MODULES_DIR / self.name

    @property
    def install_dir(self) -> pathlib.Path:
        return cache_root() / "tools" / f"{self.name}@{self.version}"

    @property
    def binaries(self) -> tuple[str, ...]:
        if self.binary_names:
            return self.binary_names
        return tuple(pkg.rstrip("/").rsplit("/", 1)[-1] for pkg in self.packages)

    def is_installed(self) -> bool:
        return (self.install_dir / COMPLETE_MARKER).exists()


def _kubernetes_ldflags(version: str) -> tuple[str, ...]:
    # Stamp the version as hack/lib/version.sh does: helm and kubectl read /version.
    minor = version.lstrip("v").split(".")[1]
    flags: list[str] = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return tuple(flags)


def all_tools() -> tuple[Tool, ...]:
    versions = pinned_versions()
    return (
        Tool(
            "etcd",
            ("go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/etcdctl/v3"),
            binary_names=("etcd", "etcdctl"),
        ),
        Tool(
            "kubernetes",
            tuple(
                f"k8s.io/kubernetes/cmd/{cmd}"
                for cmd in (
                    "kube-apiserver",
                    "kube-controller-manager",
                    "kube-scheduler",
                    "kubectl",
                )
            ),
            ldflags=_kubernetes_ldflags(versions["KUBERNETES"]),
        ),
        Tool("kwok", ("sigs.k8s.io/kwok/cmd/kwok",)),
        Tool("minio", ("github.com/minio/minio",)),
        Tool(
            "helm",
            ("helm.sh/helm/v4/cmd/helm",),
            ldflags=(f"-X helm.sh/helm/v4/internal/version.version={versions['HELM']}",),
        ),
    )


def tool(name: str) -> Tool:
    for candidate in all_tools():
        if candidate.name == name:
            return candidate
    raise KeyError(f"no pinned tool named {name!r}")


def tool_for_binary(binary: str) -> Tool:
    for tool in all_tools():
        if binary in tool.binaries:
            return tool
    raise KeyError(f"no pinned tool builds a binary named {binary!r}")


def override_variable(binary: str) -> str:
    """The environment variable that may name an existing binary instead of the cached build."""
    return "LOKISTACK_BIN_" + binary.upper().replace("-", "_")


def binary_path(binary: str) -> pathlib.Path:
    """Path of a binary: the environment override if set, else the cached build.

    Raises FileNotFoundError with the command that builds it when neither exists.
    """
    override = os.environ.get(override_variable(binary))
    if override:
        path = pathlib.Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"{override_variable(binary)}={override} is not a file")
        return path
    tool = tool_for_binary(binary)
    path = tool.install_dir / binary
    if not tool.is_installed() or not path.is_file():
        raise FileNotFoundError(f"{binary} is not built yet ({path}); run `make tools`")
    return path


def kwok_stage_dir() -> pathlib.Path:
    """Directory holding the kwok Stage files copied out of the kwok module at build time."""
    return tool("kwok").install_dir / "stages"
