"""Training and evaluation of the VQA head on cached image vectors (the CNN stays frozen).

The last ``val_fraction`` of the train images (by id) is held out: the epoch with the best
accuracy on it is kept. The test split is only used for the final numbers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from export.training import Epochs, fit_epochs
from export.vqa.data import Split, question_type
from export.vqa.model import HeadConfig, VqaHead
from serving.text import Vocabulary, encode


@dataclass(frozen=True)
class Encoded:
    """One split as tensors: image vector, question ids and answer per question."""

    v: torch.Tensor  # [N, d_v]
    tokens: torch.Tensor  # [N, max_length] int64
    lengths: torch.Tensor  # [N] int64
    labels: torch.Tensor  # [N] int64
    types: list[str]
    image_ids: np.ndarray

    def subset(self, mask: np.ndarray) -> Encoded:
        idx = torch.from_numpy(np.flatnonzero(mask))
        return Encoded(
            self.v[idx],
            self.tokens[idx],
            self.lengths[idx],
            self.labels[idx],
            [self.types[i] for i in idx.tolist()],
            self.image_ids[mask],
        )


def encode_split(
    split: Split,
    features: dict[int, np.ndarray],
    vocab: Vocabulary,
    answers: list[str],
    max_length: int,
) -> Encoded:
    texts = [encode(q, vocab, max_length, what="question") for q in split.questions]
    answer_id = {a: i for i, a in enumerate(answers)}
    return Encoded(
        v=torch.from_numpy(np.stack([features[i] for i in split.image_ids])),
        tokens=torch.from_numpy(np.stack([t.ids for t in texts])),
        lengths=torch.tensor([t.length for t in texts], dtype=torch.int64),
        labels=torch.tensor([answer_id[a] for a in split.answers], dtype=torch.int64),
        types=[question_type(q, a) for q, a in zip(split.questions, split.answers, strict=True)],
        image_ids=np.asarray(split.image_ids),
    )


def holdout(data: Encoded, val_fraction: float) -> tuple[Encoded, Encoded]:
    """Split by image, so no validation image was seen in training."""
    cut = np.quantile(np.unique(data.image_ids), 1 - val_fraction)
    return data.subset(data.image_ids < cut), data.subset(data.image_ids >= cut)


def predict(head: VqaHead, data: Encoded, batch_size: int = 1024) -> torch.Tensor:
    head.eval()
    with torch.no_grad():
        return torch.cat(
            [
                head(
                    data.v[s : s + batch_size],
                    data.tokens[s : s + batch_size],
                    data.lengths[s : s + batch_size],
                ).argmax(1)
                for s in range(0, len(data.labels), batch_size)
            ]
        )


def evaluate(head: VqaHead, data: Encoded) -> dict[str, float]:
    """Accuracy (%) overall and per question type, with the question count of each type."""
    correct = (predict(head, data) == data.labels).tolist()
    by_type: dict[str, list[bool]] = defaultdict(list)
    for t, ok in zip(data.types, correct, strict=True):
        by_type[t].append(ok)
    result = {"overall": round(100 * float(np.mean(correct)), 2), "questions": len(correct)}
    for t in sorted(by_type):
        result[t] = round(100 * float(np.mean(by_type[t])), 2)
        result[f"{t} questions"] = len(by_type[t])
    return result


def train(
    cfg: HeadConfig,
    train_set: Encoded,
    val_set: Encoded,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    checkpoint: Path | None = None,
    max_steps: int | None = None,
) -> tuple[VqaHead, dict[str, float]]:
    """Adam + cross-entropy; returns the head at its best validation epoch, that accuracy and
    the validation accuracy after each epoch (how fast each fusion learns).

    With ``checkpoint``, each epoch is saved there and a rerun resumes after the last one.
    """
    torch.manual_seed(seed)
    head = VqaHead(cfg)
    loss_fn = nn.CrossEntropyLoss()

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        logits = head(train_set.v[idx], train_set.tokens[idx], train_set.lengths[idx])
        return loss_fn(logits, train_set.labels[idx])

    history = fit_epochs(
        head,
        list(head.parameters()),
        batch_loss,
        len(train_set.labels),
        lambda: evaluate(head, val_set)["overall"],
        Epochs(epochs, batch_size, lr, seed, higher_is_better=True, max_steps=max_steps),
        name=cfg.fusion,
        checkpoint=checkpoint,
        tag=cfg.as_dict(),
    )
    return head, {"val_overall": max(history), "val_by_epoch": history}
