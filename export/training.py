"""The recipes' training loops, resumable from checkpoints: by steps (AdamW, warm-up + cosine;
the scene models) and by epochs (Adam, cosine, best validation epoch kept; captioner, VQA).

Training runs on shared CPUs, so it can be stopped at any time and resumed from the last
checkpoint with the same result as an uninterrupted run (model, optimiser and sampler state).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

LossFn = Callable[[np.ndarray], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Schedule:
    steps: int
    batch_size: int = 16
    lr: float = 2e-3
    backbone_lr_factor: float = 0.25  # pretrained layers move slower than new heads
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    seed: int = 0
    log_every: int = 20
    checkpoint_every: int = 100


def lr_at(step: int, schedule: Schedule) -> float:
    """Multiplier of the base learning rate: linear warm-up, then cosine decay to 0."""
    if step < schedule.warmup_steps:
        return (step + 1) / schedule.warmup_steps
    done = (step - schedule.warmup_steps) / max(1, schedule.steps - schedule.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))


def train(
    model: nn.Module, loss_fn: LossFn, items: int, schedule: Schedule, checkpoint: Path
) -> None:
    """Run ``schedule.steps`` steps of ``loss_fn`` over batches of item indices."""
    backbone = [
        p for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone.")
    ]
    heads = [
        p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")
    ]
    groups = [
        {"params": heads, "lr": schedule.lr},
        {"params": backbone, "lr": schedule.lr * schedule.backbone_lr_factor},
    ]
    optimiser = torch.optim.AdamW(groups, weight_decay=schedule.weight_decay)
    base_lrs = [g["lr"] for g in optimiser.param_groups]
    step = 0
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step = state["step"]
        print(f"resumed from {checkpoint} at step {step}")
    model.train()
    started, seen = time.perf_counter(), 0
    while step < schedule.steps:
        epoch, start = divmod(step * schedule.batch_size, items)
        order = _permutation(schedule.seed, epoch, items)
        indices = np.take(order, np.arange(start, start + schedule.batch_size), mode="wrap")
        for group, base in zip(optimiser.param_groups, base_lrs, strict=True):
            group["lr"] = base * lr_at(step, schedule)
        losses = loss_fn(indices)
        total = sum(losses.values())
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimiser.step()
        step, seen = step + 1, seen + 1
        if step % schedule.log_every == 0 or step == schedule.steps:
            parts = " ".join(f"{k} {float(v.detach()):.4f}" for k, v in losses.items())
            rate = (time.perf_counter() - started) / seen
            print(
                f"step {step}/{schedule.steps} loss {float(total.detach()):.4f} ({parts}) "
                f"lr {optimiser.param_groups[0]['lr']:.2e} {rate:.2f} s/step",
                flush=True,
            )
        if step % schedule.checkpoint_every == 0 or step == schedule.steps:
            _save(checkpoint, model, optimiser, step)
    model.eval()


def _permutation(seed: int, epoch: int, items: int) -> np.ndarray:
    """The item order of one epoch: seeded, so a resumed run draws the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(items)


def _save(path: Path, model: nn.Module, optimiser: torch.optim.Optimizer, step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    state = {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step}
    torch.save(state, tmp)
    tmp.replace(path)


@dataclass(frozen=True)
class Epochs:
    """An epoch schedule: Adam with cosine decay per epoch; the best validation epoch is kept."""

    epochs: int
    batch_size: int
    lr: float
    seed: int = 0
    clip_norm: float | None = None
    higher_is_better: bool = False  # accuracy: True; a loss: False
    max_steps: int | None = None  # stop early (tests, smoke runs)


def fit_epochs(
    model: nn.Module,
    params: list[nn.Parameter],
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    items: int,
    validate: Callable[[], float],
    schedule: Epochs,
    *,
    name: str,
    checkpoint: Path | None = None,
    trainable: Callable[[str], bool] = lambda key: True,
    tag: object = None,
) -> list[float]:
    """Train ``params`` of ``model`` over shuffled batches of ``items`` indices, validate after
    each epoch, and leave the model at its best epoch. Returns the validation history.

    With ``checkpoint``, every epoch is saved and a rerun resumes after the last one, if its
    ``tag`` (e.g. the model's config) matches. Only the state-dict keys ``trainable`` accepts
    are kept for the best epoch (frozen parts never move).
    """
    torch.manual_seed(schedule.seed)
    opt = torch.optim.Adam(params, lr=schedule.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=schedule.epochs)
    sign = 1.0 if schedule.higher_is_better else -1.0
    state: dict = {"epoch": 0, "best": -math.inf, "best_state": None, "history": [], "tag": tag}
    saved = {}
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False)
    if saved and saved["state"].get("tag") == tag:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        state = saved["state"]
        print(f"[{name}] resumed from {checkpoint} after epoch {state['epoch']}", flush=True)
    generator = torch.Generator().manual_seed(schedule.seed + state["epoch"])
    steps = 0
    for epoch in range(state["epoch"] + 1, schedule.epochs + 1):
        model.train()
        started, total = time.perf_counter(), 0.0
        for idx in torch.randperm(items, generator=generator).split(schedule.batch_size):
            loss = batch_loss(idx)
            opt.zero_grad()
            loss.backward()
            if schedule.clip_norm is not None:
                nn.utils.clip_grad_norm_(params, schedule.clip_norm)
            opt.step()
            total += loss.item() * len(idx)
            steps += 1
            if schedule.max_steps is not None and steps >= schedule.max_steps:
                break
        sched.step()
        model.eval()
        val = validate()
        print(
            f"[{name}] epoch {epoch}/{schedule.epochs} train loss {total / items:.4f} "
            f"val {val:.4f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        if sign * val > state["best"]:
            state["best"] = sign * val
            state["best_state"] = {
                k: t.clone() for k, t in model.state_dict().items() if trainable(k)
            }
        state["epoch"] = epoch
        state["history"].append(val)
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
        if schedule.max_steps is not None and steps >= schedule.max_steps:
            break
    model.load_state_dict(state["best_state"], strict=False)
    model.eval()
    return state["history"]
