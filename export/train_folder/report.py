"""Held-out accuracy, per-class accuracy and a confusion-matrix picture for the model card."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """``[true, predicted]`` counts."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def metrics(matrix: np.ndarray, names: list[str]) -> dict[str, Any]:
    totals = matrix.sum(axis=1)
    return {
        "val_images": int(totals.sum()),
        "val_accuracy": round(float(np.trace(matrix) / max(1, totals.sum())), 4),
        "val_per_class_accuracy": {
            name: round(float(matrix[i, i] / max(1, totals[i])), 4) for i, name in enumerate(names)
        },
        "val_confusion_matrix": matrix.tolist(),
    }


def confusion_png(matrix: np.ndarray, names: list[str], title: str) -> bytes:
    """Row-normalised confusion matrix with counts, as PNG bytes (deterministic metadata)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = matrix / np.maximum(1, matrix.sum(axis=1, keepdims=True))
    side = max(4.0, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(side, side), dpi=100)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(names)):
        for j in range(len(names)):
            colour = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour, fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
