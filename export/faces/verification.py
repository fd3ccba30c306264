"""Face verification metrics over all pairs of a labelled set of embeddings.

Scores are cosine similarities of unit embeddings. Every figure carries the pair counts it was
measured on; a TAR at a FAR below ``1 / negatives`` cannot be measured and is reported as None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pairs:
    scores: np.ndarray  # [P] cosine similarity
    same: np.ndarray  # [P] bool

    @property
    def positives(self) -> int:
        return int(self.same.sum())

    @property
    def negatives(self) -> int:
        return int((~self.same).sum())


def all_pairs(embeddings: np.ndarray, labels: list[str]) -> Pairs:
    i, j = np.triu_indices(len(labels), k=1)
    ids = np.asarray(labels)
    scores = np.einsum("pd,pd->p", embeddings[i], embeddings[j])
    return Pairs(scores.astype(np.float64), ids[i] == ids[j])


def roc_auc(p: Pairs) -> float:
    """Probability that a same-person pair outscores a different-person pair (ties count 1/2)."""
    pos, neg = p.scores[p.same], p.scores[~p.same]
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    allscores = np.concatenate([pos, neg])
    for value in np.unique(allscores):  # average ranks of ties
        tied = allscores == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def rates(p: Pairs, threshold: float) -> tuple[float, float]:
    """(TAR, FAR) when pairs scoring ``>= threshold`` are called the same person."""
    accept = p.scores >= threshold
    return float(accept[p.same].mean()), float(accept[~p.same].mean())


def tar_at_far(p: Pairs, far: float) -> float | None:
    neg = np.sort(p.scores[~p.same])[::-1]
    allowed = int(np.floor(far * len(neg)))  # false accepts permitted
    if allowed < 1:
        return None
    # just above the (allowed+1)-th best negative: at most ``allowed`` negatives pass
    threshold = np.nextafter(neg[allowed], np.inf) if allowed < len(neg) else -np.inf
    return rates(p, float(threshold))[0]


def eer(p: Pairs) -> float:
    """Equal error rate: where the false accept and false reject rates cross."""
    best = (2.0, 1.0)
    for t in np.unique(p.scores):
        tar, far = rates(p, float(t))
        gap = abs((1 - tar) - far)
        if gap < best[0]:
            best = (gap, ((1 - tar) + far) / 2)
    return float(best[1])


def calibrate(p: Pairs) -> float:
    """The threshold maximising balanced accuracy (mean of TAR and 1 - FAR) on ``p``."""
    candidates = np.unique(p.scores)
    mids = (candidates[:-1] + candidates[1:]) / 2 if len(candidates) > 1 else candidates
    best = max(mids, key=lambda t: (lambda r: r[0] + 1 - r[1])(rates(p, float(t))))
    return float(best)


def report(p: Pairs, threshold: float) -> dict[str, object]:
    tar, far = rates(p, threshold)
    accuracy = float(((p.scores >= threshold) == p.same).mean())
    return {
        "pairs": len(p.scores),
        "same_pairs": p.positives,
        "different_pairs": p.negatives,
        "threshold": round(threshold, 4),
        "accuracy": round(accuracy, 4),
        "balanced_accuracy": round((tar + 1 - far) / 2, 4),
        "tar_at_threshold": round(tar, 4),
        "far_at_threshold": round(far, 4),
        "roc_auc": round(roc_auc(p), 4),
        "eer": round(eer(p), 4),
        "tar_at_far_1e-2": _round(tar_at_far(p, 1e-2)),
        "tar_at_far_1e-3": _round(tar_at_far(p, 1e-3)),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
