"""Durability helpers for files the WAL, ring tokens and local stores write.

A rename or a new file name is durable only once its directory is fsynced; a file's contents
once the file is. Directories cannot be opened on every platform; there the directory sync is
skipped, which is the best that can be done.
"""

from __future__ import annotations

import os
import pathlib


def fsync_file(path: pathlib.Path) -> None:
    """Flush a file's contents to stable storage."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_directory(directory: pathlib.Path) -> None:
    """Make names created, renamed or deleted in ``directory`` durable."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some filesystems refuse fsync on directories; nothing more can be done there
    finally:
        os.close(descriptor)
