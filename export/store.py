"""Writing into the model store: atomic, idempotent, and validated by the server's own schema.

A running server may be reading the store while a recipe rewrites it, so each file is replaced
in one rename; a file whose bytes did not change is left alone so git and mtimes stay quiet.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from serving.core.config import ModelConfig, load_config

log = logging.getLogger(__name__)


def write_bytes(path: Path, data: bytes) -> bool:
    """Atomically make ``path`` hold ``data``; returns False when it already did."""
    if path.exists() and path.read_bytes() == data:
        log.info("unchanged %s", path)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a containerised server runs as another user
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    log.info("wrote %s", path)
    return True


class _ConfigDumper(yaml.SafeDumper):
    """Block style for mappings, flow style for short lists of scalars (shapes, mean/std)."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, dict | list) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_ConfigDumper.add_representer(list, _represent_list)


def dump_config(config: dict[str, Any]) -> str:
    return yaml.dump(config, Dumper=_ConfigDumper, sort_keys=False, width=100, allow_unicode=True)


def write_config(folder: Path, config: dict[str, Any]) -> ModelConfig:
    """Validate ``config`` with :func:`serving.core.config.load_config`; write ``config.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = dump_config(config)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".config.", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        validated = load_config(Path(tmp))  # raises ConfigError naming the field
    finally:
        Path(tmp).unlink(missing_ok=True)
    write_bytes(folder / "config.yaml", text.encode())
    return validated
