"""An object store in a local directory, for one-process mode and tests.

Key ``a/b/c`` is the file ``<root>/a/b/c``. A ``put`` must look atomic, as an S3 put does: a
querier may read an index file while an ingester writes another, and a crash must never leave a
truncated chunk under a real key. So every write goes to a temporary file next to its target,
is fsynced, renamed over the target, and the directory is fsynced (docs/format/storage.md).

File I/O blocks, so each operation runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import os
import pathlib
import secrets

from lokistack import fileutil
from lokistack.storage import objstore

_STORE = "filesystem"


class FilesystemStore:
    """:class:`~lokistack.storage.objstore.ObjectStore` on the directory ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = pathlib.Path(root).absolute()

    def __repr__(self) -> str:
        return f"FilesystemStore({str(self.root)!r})"

    def path_for(self, key: str) -> pathlib.Path:
        """The file that holds ``key``; raises ``ValueError`` for keys that could escape root."""
        return self.root.joinpath(*objstore.validate_key(key).split("/"))

    async def put(self, key: str, data: bytes) -> None:
        path = self.path_for(key)
        with objstore.observe(_STORE, "put"):
            await asyncio.to_thread(self._put, path, data)

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        with objstore.observe(_STORE, "get"):
            return await asyncio.to_thread(self._get, key, path)

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        path = self.path_for(key)
        objstore.validate_range(offset, length)
        with objstore.observe(_STORE, "get_range"):
            return await asyncio.to_thread(self._get_range, key, path, offset, length)

    async def list(self, prefix: str) -> list[objstore.ObjectInfo]:
        with objstore.observe(_STORE, "list"):
            return await asyncio.to_thread(self._list, prefix)

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        with objstore.observe(_STORE, "delete"):
            await asyncio.to_thread(self._delete, path)

    async def exists(self, key: str) -> bool:
        path = self.path_for(key)
        with objstore.observe(_STORE, "exists"):
            return await asyncio.to_thread(path.is_file)

    # -- blocking parts, run in worker threads -----------------------------------------------

    def _put(self, path: pathlib.Path, data: bytes) -> None:
        try:
            _make_dirs(path.parent, self.root)
            tmp = path.with_name(objstore.TMP_PREFIX + secrets.token_hex(8))
            try:
                with tmp.open("xb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                tmp.replace(path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            fileutil.fsync_directory(path.parent)
        except OSError as err:
            raise objstore.StorageError(f"cannot write {path}: {err}") from err

    def _get(self, key: str, path: pathlib.Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as err:
            raise _read_error(key, path, err) from err

    def _get_range(self, key: str, path: pathlib.Path, offset: int, length: int) -> bytes:
        try:
            with path.open("rb") as file:
                if length == 0:
                    return b""
                file.seek(offset)
                return file.read(length)
        except OSError as err:
            raise _read_error(key, path, err) from err

    def _list(self, prefix: str) -> builtins.list[objstore.ObjectInfo]:
        # Walk only the deepest directory the prefix names in full, then filter by the prefix.
        directory, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*directory.split("/")) if directory else self.root
        if directory:
            objstore.validate_key(directory)
        found: builtins.list[objstore.ObjectInfo] = []
        try:
            for dirpath, dirnames, filenames in os.walk(start):
                dirnames[:] = [d for d in dirnames if not d.startswith(objstore.TMP_PREFIX)]
                base = pathlib.Path(dirpath)
                for name in filenames:
                    if name.startswith(objstore.TMP_PREFIX):
                        continue
                    file = base / name
                    key = file.relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        try:
                            found.append(objstore.ObjectInfo(key, file.stat().st_size))
                        except FileNotFoundError:
                            continue  # deleted while we walked
        except OSError as err:
            raise objstore.StorageError(f"cannot list {start}: {err}") from err
        found.sort(key=lambda info: info.key)
        return found

    def _delete(self, path: pathlib.Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError:
            return  # a key prefix, not an object: nothing to delete, as in S3
        except OSError as err:
            raise objstore.StorageError(f"cannot delete {path}: {err}") from err


def _read_error(key: str, path: pathlib.Path, err: OSError) -> objstore.ObjectStoreError:
    if err.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
        return objstore.ObjectNotFoundError(key)
    return objstore.StorageError(f"cannot read {path}: {err}")


def _make_dirs(directory: pathlib.Path, root: pathlib.Path) -> None:
    """Create ``directory`` and fsync each new entry into its parent, so it survives a crash."""
    if not root.is_dir():
        root.mkdir(parents=True, exist_ok=True)
    missing: list[pathlib.Path] = []
    current = directory
    while current != root and not current.is_dir():
        missing.append(current)
        current = current.parent
    for new in reversed(missing):
        try:
            new.mkdir()
        except FileExistsError:
            continue  # another writer created it first
        fileutil.fsync_directory(new.parent)
