"""Teacher-forced training of the captioner on cached region grids (the CNN stays frozen).

Every (image, reference) pair is one example per epoch; the epoch with the lowest validation
loss is kept. Checkpoints after each epoch let a rerun resume.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from export.captioner.model import Captioner
from serving.text import BOS, EOS, Vocabulary, tokenize

log = logging.getLogger(__name__)


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
    torch.manual_seed(seed)
    regions, tokens, owners = train_data
    params = [p for n, p in model.named_parameters() if not n.startswith("encoder.cnn.")]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    state = {"epoch": 0, "best": float("inf"), "best_state": None, "cfg": model.cfg.as_dict()}
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False)
        if saved["state"]["cfg"] == model.cfg.as_dict():
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["opt"])
            sched.load_state_dict(saved["sched"])
            state = saved["state"]
            log.info("resumed %s after epoch %d", checkpoint.name, state["epoch"])
    generator = torch.Generator().manual_seed(seed + state["epoch"])
    steps = 0
    for epoch in range(state["epoch"] + 1, epochs + 1):
        model.train()
        model.encoder.cnn.eval()
        started, total = time.perf_counter(), 0.0
        order = torch.randperm(len(tokens), generator=generator)
        for idx in order.split(batch_size):
            batch = tokens[idx]
            batch = batch[:, : int((batch > 0).sum(1).max())]  # drop all-padding columns
            loss = nll(model, torch.from_numpy(regions[owners[idx].numpy()]).float(), batch)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            total += loss.item() * len(idx)
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        sched.step()
        val = val_loss(model, *val_data)
        print(
            f"[captioner] epoch {epoch}/{epochs} train nll {total / len(tokens):.4f} "
            f"val nll {val:.4f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        if val < state["best"]:
            state["best"] = val
            state["best_state"] = {
                k: t.clone()
                for k, t in model.state_dict().items()
                if not k.startswith("encoder.cnn.")
            }
        state["epoch"] = epoch
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "state": state,
                },
                checkpoint,
            )
        if max_steps is not None and steps >= max_steps:
            break
    model.load_state_dict(state["best_state"], strict=False)
    return {"val_nll": round(state["best"], 4)}
