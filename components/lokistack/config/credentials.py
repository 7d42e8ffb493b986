"""S3 credentials: from the config, from mounted Secret files, or from the environment.

Kubernetes offers a Secret either as files or as environment variables, and local users keep
``AWS_*`` variables in their shell, so each credential is looked up in this order and the first
one found wins: the value in the config, the file named in the config, the standard AWS
environment variable.  Resolution happens when the store is opened, never at import, and the
result is not part of the config, so ``--print-config`` and the operator's config hash never see
a secret that was not written into the file.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping

from lokistack.config import decode, schema

ACCESS_KEY_ID_ENV = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY_ENV = "AWS_SECRET_ACCESS_KEY"


@dataclasses.dataclass(frozen=True)
class S3Credentials:
    """A resolved key pair; both empty means anonymous access."""

    access_key_id: str
    secret_access_key: str = dataclasses.field(repr=False)

    @property
    def anonymous(self) -> bool:
        return not self.access_key_id


def _read_secret_file(path: str, key: str) -> str:
    try:
        # Secrets written with `echo` end in a newline that is not part of the key.
        return pathlib.Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise decode.ConfigError(key, f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise decode.ConfigError(key, f"cannot read {path}: not UTF-8 text") from None


def _resolve_one(value: str, file: str, env_name: str, key: str, env: Mapping[str, str]) -> str:
    if value:
        return value
    if file:
        return _read_secret_file(file, f"{key}_file")
    return env.get(env_name, "")


def resolve_s3_credentials(
    s3: schema.S3, environ: Mapping[str, str] | None = None
) -> S3Credentials:
    """Resolve each credential as value > file > environment; the pair must be complete.

    ``environ`` defaults to the process environment at call time; tests pass a dict.
    """
    env = os.environ if environ is None else environ
    access_key_id = _resolve_one(
        s3.access_key_id,
        s3.access_key_id_file,
        ACCESS_KEY_ID_ENV,
        "storage.s3.access_key_id",
        env,
    )
    secret_access_key = _resolve_one(
        s3.secret_access_key,
        s3.secret_access_key_file,
        SECRET_ACCESS_KEY_ENV,
        "storage.s3.secret_access_key",
        env,
    )
    if access_key_id and not secret_access_key:
        raise decode.ConfigError(
            "storage.s3.secret_access_key",
            "an access key ID was found but no secret access key: set secret_access_key, "
            f"secret_access_key_file or {SECRET_ACCESS_KEY_ENV}",
        )
    if secret_access_key and not access_key_id:
        raise decode.ConfigError(
            "storage.s3.access_key_id",
            "a secret access key was found but no access key ID: set access_key_id, "
            f"access_key_id_file or {ACCESS_KEY_ID_ENV}",
        )
    return S3Credentials(access_key_id, secret_access_key)
