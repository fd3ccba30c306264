"""Teacher-forced training of the captioner on cached region grids (the CNN stays frozen).

Every (image, reference) pair is one example per epoch; the epoch with the lowest validation
loss is kept. Checkpoints after each epoch let a rerun resume.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from export.captioner.model import Captioner
from export.training import Epochs, fit_epochs
from serving.text import BOS, EOS, Vocabulary, tokenize


def caption_tensor(
    captions: list[list[str]], vocab: Vocabulary
) -> tuple[torch.Tensor, torch.Tensor]:
    """``<bos> words <eos>`` ids padded with 0: [pairs, T], and each pair's image index."""
    seqs, owners = [], []
    for image, refs in enumerate(captions):
        for ref in refs:
            seqs.append([vocab.id(BOS), *vocab.ids(tokenize(ref)), vocab.id(EOS)])
            owners.append(image)
    out = torch.zeros((len(seqs), max(map(len, seqs))), dtype=torch.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s)
    return out, torch.tensor(owners)


def nll(model: Captioner, regions: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    log_probs = model(regions, tokens)
    return nn.functional.nll_loss(
        log_probs.reshape(-1, log_probs.shape[-1]), tokens[:, 1:].reshape(-1), ignore_index=0
    )


def val_loss(
    model: Captioner, regions: np.ndarray, tokens: torch.Tensor, owners: torch.Tensor
) -> float:
    model.eval()
    with torch.no_grad():
        losses = [
            float(
                nll(
                    model,
                    torch.from_numpy(regions[owners[s : s + 256].numpy()]).float(),
                    tokens[s : s + 256],
                )
            )
            for s in range(0, len(tokens), 256)
        ]
    return float(np.mean(losses))


def train(
    model: Captioner,
    train_data: tuple[np.ndarray, torch.Tensor, torch.Tensor],
    val_data: tuple[np.ndarray, torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    checkpoint: Path | None = None,
    max_steps: int | None = None,
) -> dict[str, float]:
    """Trains ``model`` in place (CNN excluded) and leaves it at its best validation epoch."""
    regions, tokens, owners = train_data
    params = [p for n, p in model.named_parameters() if not n.startswith("encoder.cnn.")]

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        batch = tokens[idx]
        batch = batch[:, : int((batch > 0).sum(1).max())]  # drop all-padding columns
        return nll(model, torch.from_numpy(regions[owners[idx].numpy()]).float(), batch)

    history = fit_epochs(
        model,
        params,
        batch_loss,
        len(tokens),
        lambda: val_loss(model, *val_data),
        Epochs(epochs, batch_size, lr, seed, clip_norm=5.0, max_steps=max_steps),
        name="captioner",
        checkpoint=checkpoint,
        tag=model.cfg.as_dict(),
        trainable=lambda key: not key.startswith("encoder.cnn."),
    )
    return {"val_nll": round(min(history), 4)}
