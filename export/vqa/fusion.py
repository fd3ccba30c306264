"""Bilinear fusion of an image vector and a question vector into one joint vector.

:class:`MutanFusion` is the Tucker fusion of MUTAN (Ben-younes, Cadene, Cord, Thome, ICCV 2017):
``q`` and ``v`` are projected (tanh) to ``t_q`` and ``t_v`` dimensions by the factor matrices
``W_q`` and ``W_v``; their interaction goes through a core tensor ``T_c`` of shape
``t_q x t_v x t_o`` whose rank is constrained to ``R``, i.e. ``(T_c x_1 q̃) x_2 ṽ`` becomes a sum of
``R`` element-wise products ``(q̃ W_q^r) * (ṽ W_v^r)``. The output factor ``W_o``
(``t_o`` -> answers) is the classifier that follows. Each ``q̃ W_q^r`` and ``ṽ W_v^r`` passes
through tanh, as in the authors' released code.

The baselines keep the same projections and replace the core: :class:`ProductFusion` is one
element-wise product (no core tensor), :class:`ConcatFusion` concatenates and mixes with a
hidden layer. Training all three on the same encoders shows what the Tucker core adds.
"""

from __future__ import annotations

import torch
from torch import nn


def _projection(d_in: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(d_in, d_out), nn.Tanh())


class MutanFusion(nn.Module):
    def __init__(
        self,
        d_q: int,
        d_v: int,
        *,
        t_q: int = 310,
        t_v: int = 310,
        t_o: int = 510,
        rank: int = 5,
        dropout_q: float = 0.5,
        dropout_v: float = 0.5,
        dropout_core: float = 0.0,
    ) -> None:
        super().__init__()
        self.out_dim, self.rank = t_o, rank
        self.w_q = _projection(d_q, t_q, dropout_q)  # q̃ = tanh(W_q q)
        self.w_v = _projection(d_v, t_v, dropout_v)  # ṽ = tanh(W_v v)
        # The R slices of the rank-constrained core, all R computed by one matmul per modality.
        self.core_q = nn.Sequential(nn.Dropout(dropout_core), nn.Linear(t_q, rank * t_o))
        self.core_v = nn.Sequential(nn.Dropout(dropout_core), nn.Linear(t_v, rank * t_o))

    def forward(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        zq = torch.tanh(self.core_q(self.w_q(q))).view(-1, self.rank, self.out_dim)
        zv = torch.tanh(self.core_v(self.w_v(v))).view(-1, self.rank, self.out_dim)
        return (zq * zv).sum(dim=1)


class ProductFusion(nn.Module):
    """``tanh(W_q q) * tanh(W_v v)``: the element-wise product baseline."""

    def __init__(
        self, d_q: int, d_v: int, *, t_o: int = 510, dropout_q: float = 0.5, dropout_v: float = 0.5
    ) -> None:
        super().__init__()
        self.out_dim = t_o
        self.w_q = _projection(d_q, t_o, dropout_q)
        self.w_v = _projection(d_v, t_o, dropout_v)

    def forward(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.w_q(q) * self.w_v(v)


class ConcatFusion(nn.Module):
    """``tanh(W [tanh(W_q q); tanh(W_v v)])``: the concatenation baseline with a hidden layer."""

    def __init__(
        self,
        d_q: int,
        d_v: int,
        *,
        t_q: int = 310,
        t_v: int = 310,
        t_o: int = 510,
        dropout_q: float = 0.5,
        dropout_v: float = 0.5,
    ) -> None:
        super().__init__()
        self.out_dim = t_o
        self.w_q = _projection(d_q, t_q, dropout_q)
        self.w_v = _projection(d_v, t_v, dropout_v)
        self.mix = nn.Sequential(nn.Linear(t_q + t_v, t_o), nn.Tanh())

    def forward(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.mix(torch.cat([self.w_q(q), self.w_v(v)], dim=1))


FUSIONS = {"mutan": MutanFusion, "product": ProductFusion, "concat": ConcatFusion}
