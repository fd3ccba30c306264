"""Show, Attend and Tell (Xu et al., 2015) over MobileNetV2, split for step-wise serving.

:class:`CaptionEncoder` runs once per image: the 7x7 grid of MobileNetV2 features becomes
``features`` (the values attention reads), ``keys`` (their attention projection, computed once
instead of at every step) and the LSTM's initial state from the mean feature.
:class:`DecoderStep` is one step: previous token, state and the image's features in; log-probs
of the next token and the new state out. Training unrolls this same module, so the exported
step is exactly what was trained, and the server owns the decoding loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CaptionerConfig:
    vocab_size: int
    d_v: int = 1280  # MobileNetV2 channels per grid cell
    d_att: int = 256  # region feature size after projection
    d_key: int = 256  # attention space
    d_emb: int = 128  # word embedding
    d_h: int = 384  # LSTM state
    dropout: float = 0.5

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class CaptionEncoder(nn.Module):
    """pixels -> features [N, R, d_att], keys [N, R, d_key], h [N, d_h], c [N, d_h]."""

    def __init__(self, cnn: nn.Module, cfg: CaptionerConfig) -> None:
        super().__init__()
        self.cnn = cnn  # MobileNetV2 .features, frozen
        self.project = nn.Sequential(nn.Linear(cfg.d_v, cfg.d_att), nn.ReLU())
        self.key = nn.Linear(cfg.d_att, cfg.d_key)
        self.init_h = nn.Linear(cfg.d_v, cfg.d_h)
        self.init_c = nn.Linear(cfg.d_v, cfg.d_h)

    def regions(self, pixels: torch.Tensor) -> torch.Tensor:
        """The frozen CNN's grid as a sequence of regions, [N, H*W, d_v]."""
        return self.cnn(pixels).flatten(2).transpose(1, 2)

    def from_regions(
        self, regions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.project(regions)
        mean = regions.mean(dim=1)
        return (
            features,
            self.key(features),
            torch.tanh(self.init_h(mean)),
            torch.tanh(self.init_c(mean)),
        )

    def forward(
        self, pixels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.from_regions(self.regions(pixels))


class DecoderStep(nn.Module):
    """(token [N], h, c, features, keys) -> (log_probs [N, V], h_next, c_next)."""

    def __init__(self, cfg: CaptionerConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_emb, padding_idx=0)
        self.query = nn.Linear(cfg.d_h, cfg.d_key)
        self.score = nn.Linear(cfg.d_key, 1)
        self.lstm = nn.LSTMCell(cfg.d_emb + cfg.d_att, cfg.d_h)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.d_h, cfg.vocab_size)

    def forward(
        self,
        token: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
        features: torch.Tensor,
        keys: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scores = self.score(torch.tanh(keys + self.query(h).unsqueeze(1))).squeeze(2)
        alpha = torch.softmax(scores, dim=1)  # soft attention over the regions
        context = (alpha.unsqueeze(2) * features).sum(dim=1)
        h, c = self.lstm(torch.cat([self.embed(token), context], dim=1), (h, c))
        return torch.log_softmax(self.out(self.drop(h)), dim=1), h, c


class Captioner(nn.Module):
    """Encoder + decoder step, unrolled with teacher forcing for training."""

    def __init__(self, cnn: nn.Module, cfg: CaptionerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = CaptionEncoder(cnn, cfg)
        self.step = DecoderStep(cfg)

    def forward(self, regions: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Log-probs [N, T-1, V] of tokens[:, 1:] given tokens[:, :-1] (``<bos>`` first)."""
        features, keys, h, c = self.encoder.from_regions(regions)
        out = []
        for t in range(tokens.shape[1] - 1):
            log_probs, h, c = self.step(tokens[:, t], h, c, features, keys)
            out.append(log_probs)
        return torch.stack(out, dim=1)
