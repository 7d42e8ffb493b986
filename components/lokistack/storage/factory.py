"""Open the object store the configuration names: one place that knows every implementation."""

from __future__ import annotations

from collections.abc import Mapping

from lokistack import config
from lokistack.storage import filesystem, objstore, s3


def new_object_store(
    cfg: config.Storage, environ: Mapping[str, str] | None = None
) -> objstore.ObjectStore:
    """The store for ``storage``: a directory, or an S3 bucket with credentials resolved now.

    ``environ`` is where S3 credentials fall back to (``AWS_*``); the process environment by
    default.  Raises :class:`lokistack.config.ConfigError` for an unusable S3 block.
    """
    if cfg.type == "filesystem":
        return filesystem.FilesystemStore(cfg.filesystem.directory)
    if cfg.type == "s3":
        return s3.S3Store.from_config(cfg.s3, environ)
    raise config.ConfigError("storage.type", f"unknown object store {cfg.type!r}")
