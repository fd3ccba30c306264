"""The VQA network: question encoder, fusion and answer classifier, with or without the CNN.

:class:`VqaHead` is what training updates (on cached image vectors); :class:`VqaNet` puts the
frozen backbone in front of it for export, so the ONNX model takes pixels and token ids.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from export.vqa.fusion import FUSIONS


@dataclass(frozen=True)
class HeadConfig:
    """Hyper-parameters, named as in the MUTAN paper where it names them."""

    vocab_size: int
    answers: int
    fusion: str = "mutan"  # mutan | product | concat
    d_emb: int = 128  # word embedding size
    d_q: int = 256  # GRU state = question vector size
    d_v: int = 1280  # image vector size (MobileNetV2)
    t_q: int = 310
    t_v: int = 310
    t_o: int = 510
    rank: int = 5  # R, the rank of the Tucker core
    dropout_q: float = 0.5
    dropout_v: float = 0.5
    dropout_o: float = 0.5  # before the classifier W_o

    def fusion_kwargs(self) -> dict[str, float]:
        kw = {"t_o": self.t_o, "dropout_q": self.dropout_q, "dropout_v": self.dropout_v}
        if self.fusion != "product":
            kw |= {"t_q": self.t_q, "t_v": self.t_v}
        if self.fusion == "mutan":
            kw["rank"] = self.rank
        return kw

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class QuestionEncoder(nn.Module):
    """Word embeddings -> GRU; the question vector is the state after its last real token."""

    def __init__(self, vocab_size: int, d_emb: int, d_q: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_emb, padding_idx=0)
        self.gru = nn.GRU(d_emb, d_q, batch_first=True)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        words = self.embed(tokens)
        # An explicit zero state sized from the input keeps the exported batch axis dynamic.
        h0 = words.new_zeros((1, words.shape[0], self.gru.hidden_size))
        states, _ = self.gru(words, h0)  # [N, T, d_q]; padding comes after the words
        last = (lengths.clamp(min=1) - 1).view(-1, 1, 1).expand(-1, 1, states.shape[2])
        return states.gather(1, last).squeeze(1)


class VqaHead(nn.Module):
    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.question = QuestionEncoder(cfg.vocab_size, cfg.d_emb, cfg.d_q)
        self.fusion = FUSIONS[cfg.fusion](cfg.d_q, cfg.d_v, **cfg.fusion_kwargs())
        self.classifier = nn.Sequential(nn.Dropout(cfg.dropout_o), nn.Linear(cfg.t_o, cfg.answers))

    def forward(self, v: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.fusion(self.question(tokens, lengths), v))


class VqaNet(nn.Module):
    """pixels [N,3,H,W], tokens [N,T] int64, lengths [N] int64 -> answer logits [N, answers]."""

    def __init__(self, backbone: nn.Module, head: VqaHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(
        self, pixels: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        return self.head(self.backbone(pixels), tokens, lengths)
