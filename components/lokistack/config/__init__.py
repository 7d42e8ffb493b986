"""The one typed configuration schema of Lokistack, shared by every component and the operator.

Use it through this package (``from lokistack import config``, then ``config.Config``,
``config.load(...)``); the submodules split the work:

- :mod:`~lokistack.config.schema`: the frozen dataclasses, their defaults and choice types;
- :mod:`~lokistack.config.units`: durations (``1h30m``) and byte sizes (``256KB``);
- :mod:`~lokistack.config.decode`: strict conversion from YAML values, errors that name the key;
- :mod:`~lokistack.config.loader`: file + flags loading, whole-config validation, rendering;
- :mod:`~lokistack.config.runtime`: per-tenant overrides from the runtime-config file;
- :mod:`~lokistack.config.credentials`: S3 credentials from value, file or environment.

Importing the package reads no file and no environment variable.  docs/configuration.md is the
reference for every key.
"""

from lokistack.config.credentials import S3Credentials, resolve_s3_credentials
from lokistack.config.decode import REDACTED, ConfigError, keys
from lokistack.config.loader import (
    apply_overrides,
    load,
    parse,
    to_dict,
    to_yaml,
    validate,
    validate_limits,
)
from lokistack.config.runtime import (
    RuntimeConfig,
    load_runtime_config,
    parse_runtime_config,
    runtime_config_to_yaml,
)
from lokistack.config.schema import (
    S3,
    TARGETS,
    Backoff,
    Bytes,
    ChunkEncoding,
    Compactor,
    Config,
    Distributor,
    DistributorRing,
    Engine,
    Filesystem,
    Frontend,
    FsyncMode,
    Ingester,
    KubernetesKV,
    KVStore,
    KVStoreName,
    Limits,
    LogFormat,
    LogLevel,
    Querier,
    RateStrategy,
    ResultsCache,
    Ring,
    RuntimeConfigFile,
    Server,
    Storage,
    StorageType,
    Target,
    Wal,
)
from lokistack.config.units import format_bytes, format_duration, parse_bytes, parse_duration

__all__ = [
    "REDACTED",
    "S3",
    "TARGETS",
    "Backoff",
    "Bytes",
    "ChunkEncoding",
    "Compactor",
    "Config",
    "ConfigError",
    "Distributor",
    "DistributorRing",
    "Engine",
    "Filesystem",
    "Frontend",
    "FsyncMode",
    "Ingester",
    "KVStore",
    "KVStoreName",
    "KubernetesKV",
    "Limits",
    "LogFormat",
    "LogLevel",
    "Querier",
    "RateStrategy",
    "ResultsCache",
    "Ring",
    "RuntimeConfig",
    "RuntimeConfigFile",
    "S3Credentials",
    "Server",
    "Storage",
    "StorageType",
    "Target",
    "Wal",
    "apply_overrides",
    "format_bytes",
    "format_duration",
    "keys",
    "load",
    "load_runtime_config",
    "parse",
    "parse_bytes",
    "parse_duration",
    "parse_runtime_config",
    "resolve_s3_credentials",
    "runtime_config_to_yaml",
    "to_dict",
    "to_yaml",
    "validate",
    "validate_limits",
]
