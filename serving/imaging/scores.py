"""Classifier postprocessing: probabilities and the top-k labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (max-subtracted) in float32."""
    shifted = logits.astype(np.float32) - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


@dataclass(frozen=True)
class Prediction:
    label: str
    class_id: int
    probability: float


def top_k(probabilities: np.ndarray, k: int, labels: list[str]) -> list[Prediction]:
    """Highest ``k`` classes of one row, best first; ties broken by lower class id."""
    k = min(k, probabilities.shape[-1])
    candidates = np.argpartition(-probabilities, k - 1)[:k]
    order = candidates[np.lexsort((candidates, -probabilities[candidates]))]
    return [Prediction(labels[i], int(i), float(probabilities[i])) for i in order]
