"""The start-up check of the model store: serving nothing must never look like success."""

from __future__ import annotations

from pathlib import Path


class ModelStoreError(RuntimeError):
    """The store is missing or holds no model folder; the message names the path looked in."""


def require_models(store: Path) -> list[str]:
    """Names of the model folders (those with a ``config.yaml``) in ``store``; at least one."""
    where = store.expanduser().resolve()
    if not where.is_dir():
        raise ModelStoreError(
            f"model store {where} does not exist: pass --model-store DIR (or FOVEA_MODEL_STORE) "
            "pointing at a folder of models, e.g. the repository's model_store/"
        )
    names = sorted(p.name for p in where.iterdir() if (p / "config.yaml").is_file())
    if not names:
        raise ModelStoreError(
            f"model store {where} holds no model (no <model>/config.yaml folder): pass "
            "--model-store DIR (or FOVEA_MODEL_STORE) pointing at a folder of models"
        )
    return names
