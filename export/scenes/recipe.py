"""``fovea export scenes``: write the train/val/test scene datasets (no model is built)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from export.scenes.dataset import build_split

DEFAULT_COUNTS = {"train": 4000, "val": 300, "test": 400}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="dataset root (default <cache>/scenes)")
    parser.add_argument("--seed", type=int, default=0)
    for split, count in DEFAULT_COUNTS.items():
        parser.add_argument(f"--{split}", type=int, default=count, help=f"{split} scenes")


def ensure_dataset(root: Path, counts: dict[str, int], seed: int) -> None:
    """Build each split that is missing or differs in size or seed; matching ones are kept."""
    for split, count in counts.items():
        graphs = root / split / "scenes.jsonl"
        if graphs.is_file():
            lines = graphs.read_text().splitlines()
            if len(lines) == count and json.loads(lines[0])["seed"][0] == seed:
                continue
        for stale in (root / split).glob("features-*"):  # caches of the old scenes
            shutil.rmtree(stale)
        print(f"composing {count} {split} scenes into {root / split}")
        build_split(root, split, count, seed=seed)


def build(model_store: Path, cache: Path, *, data: Path | None, seed: int, **counts: int) -> Path:
    """``model_store`` is unused: the product is a dataset under ``data``."""
    del model_store
    root = data or cache / "scenes"
    ensure_dataset(root, counts, seed)
    print(f"wrote {root}")
    return root
