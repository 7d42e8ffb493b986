"""Random ring tokens and the tokens file that keeps them across restarts.

An ingester's tokens decide which streams it receives.  If a restarted ingester drew new tokens,
every stream it held would move to other ingesters while its WAL replays the old streams here, so
the tokens are saved beside the WAL and reloaded at start (DESIGN.md "Ring").

The file format is Loki's (dskit ``Tokens.StoreToFile``): a JSON object ``{"tokens": [...]}``
with the tokens as integers, so a tokens file can be read by people and tools alike.  Writing is
atomic (temporary file, fsync, rename, fsync of the directory): a crash leaves either the old file
or the new one, never a torn one.  Unreadable files are treated as absent and logged: the ingester
then joins with fresh tokens rather than refusing to start.

These functions do blocking file I/O; async callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import random
import tempfile
from collections.abc import Iterable, Set

from lokistack import fileutil
from lokistack.ring import model

_log = logging.getLogger(__name__)


def generate_tokens(count: int, taken: Set[int], rng: random.Random | None = None) -> list[int]:
    """``count`` distinct random 32-bit tokens that are not in ``taken``, sorted.

    Like dskit's random token generator: draw uniformly, skip values already owned by another
    member (or already drawn).  ``rng`` makes the result reproducible in tests; by default a
    generator seeded from the operating system is used, so two ingesters starting at the same
    instant do not draw the same tokens.
    """
    if count < 0:
        raise ValueError(f"token count must not be negative, got {count}")
    if count > model.MAX_TOKEN + 1 - len(taken):
        raise ValueError(f"cannot draw {count} tokens: not enough free values in the ring")
    rng = rng if rng is not None else random.Random()  # placement, not secrets
    drawn: set[int] = set()
    while len(drawn) < count:
        candidate = rng.getrandbits(32)
        if candidate not in taken:
            drawn.add(candidate)
    return sorted(drawn)


def load_tokens(path: pathlib.Path | str) -> list[int] | None:
    """The sorted tokens saved in ``path``, or None if there is no usable file.

    A missing file is the normal first start and is not logged as a problem; a file that is not
    valid JSON, lacks the ``tokens`` list or holds values outside 0..2^32-1 is logged as a warning
    and ignored.
    """
    path = pathlib.Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        _log.warning("cannot read ring tokens file %s: %s", path, error)
        return None
    try:
        tokens = _decode(raw)
    except ValueError as error:
        _log.warning("ignoring corrupt ring tokens file %s: %s", path, error)
        return None
    return tokens


def _decode(raw: bytes) -> list[int]:
    document = json.loads(raw)  # json.JSONDecodeError is a ValueError
    if not isinstance(document, dict) or not isinstance(document.get("tokens"), list):
        raise ValueError('expected a JSON object with a "tokens" list')
    tokens: set[int] = set()
    for value in document["tokens"]:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"token {value!r} is not an integer")
        if not 0 <= value <= model.MAX_TOKEN:
            raise ValueError(f"token {value} is outside 0..{model.MAX_TOKEN}")
        tokens.add(value)
    return sorted(tokens)


def save_tokens(path: pathlib.Path | str, tokens: Iterable[int]) -> None:
    """Write ``tokens`` (sorted) to ``path`` atomically, creating its directory if needed."""
    path = pathlib.Path(path)
    ordered = sorted(set(tokens))
    if ordered and (ordered[0] < 0 or ordered[-1] > model.MAX_TOKEN):
        raise ValueError("ring tokens must be 32-bit unsigned integers")
    payload = json.dumps({"tokens": ordered}, separators=(",", ":")).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        pathlib.Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            pathlib.Path(temporary).unlink()
        raise
    fileutil.fsync_directory(path.parent)
