"""The model config schema: everything the server needs to serve one model, as data.

A model folder in the store holds ``config.yaml`` (validated by :class:`ModelConfig`), optional
side files it names (labels, vocabularies) and numbered version folders with ``model.onnx``.
Adding a model is adding a folder; nothing here names a particular model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Datatype = Literal[
    "BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"
]
Task = Literal[
    "classification",
    "detection",
    "segmentation",
    "captioning",
    "vqa",
    "face_detection",
    "face_embedding",
    "tensor",
]
Interpolation = Literal["nearest", "bilinear", "bicubic", "lanczos", "box"]


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a config must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(Strict):
    name: str
    datatype: Datatype
    shape: list[int] = Field(description="-1 marks a dynamic axis; the first axis is the batch")

    @field_validator("shape")
    @classmethod
    def _dims(cls, shape: list[int]) -> list[int]:
        if any(d < -1 or d == 0 for d in shape):
            raise ValueError("dimensions are positive or -1 (dynamic)")
        return shape


class ShorterSide(Strict):
    """Scale so the shorter side is ``size`` (torchvision ``Resize(int)``)."""

    mode: Literal["shorter_side"]
    size: int = Field(gt=0)
    interpolation: Interpolation = "bilinear"


class ExactSize(Strict):
    """Stretch to ``width`` x ``height`` ignoring aspect ratio."""

    mode: Literal["exact"]
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    interpolation: Interpolation = "bilinear"


class Letterbox(Strict):
    """Fit inside ``width`` x ``height`` keeping aspect ratio, pad the rest with ``pad_value``."""

    mode: Literal["letterbox"]
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    interpolation: Interpolation = "bilinear"
    pad_value: int = Field(default=114, ge=0, le=255)
    center: bool = Field(default=False, description="pad on both sides instead of right/bottom")


Resize = Annotated[ShorterSide | ExactSize | Letterbox, Field(discriminator="mode")]


class CenterCrop(Strict):
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class Normalize(Strict):
    """``(pixel * scale - mean) / std`` per channel, in RGB order."""

    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @field_validator("std")
    @classmethod
    def _nonzero(cls, std: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s == 0 for s in std):
            raise ValueError("std must be non-zero")
        return std


class Preprocess(Strict):
    """How an uploaded image becomes the model's image tensor."""

    input: str = Field(description="name of the model input that receives the image tensor")
    resize: Resize | None = None
    crop: CenterCrop | None = None
    normalize: Normalize = Normalize()
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    datatype: Literal["FP32", "FP16", "UINT8"] = "FP32"


class SoftmaxTopK(Strict):
    kind: Literal["softmax_topk"]
    output: str = Field(description="name of the logits (or probabilities) output")
    labels: str = Field(description="file in the model folder, one label per line")
    apply_softmax: bool = True
    default_top_k: int = Field(default=5, gt=0)


class TensorOnly(Strict):
    """No task postprocessing: the model is served over the v2 tensor API only."""

    kind: Literal["none"]


class SequenceDecoding(Strict):
    """The server decodes text step by step (:mod:`serving.tasks.caption.beam_search`).

    This model is the encoder: its outputs are the decoder step's inputs other than the token.
    ``decoder_model`` (another model in the store) runs one step; ``state`` maps each decoder
    input that changes per step to the decoder output that replaces it.
    """

    kind: Literal["sequence_decoding"]
    decoder_model: str
    vocabulary: str = Field(description="file in the model folder with <pad>, <unk>, <bos>, <eos>")
    token_input: str = "token"
    log_probs_output: str = "log_probs"
    state: dict[str, str] = Field(min_length=1, description="decoder input -> decoder output")
    max_length: int = Field(default=32, gt=0, description="the most tokens a request may ask")
    default_max_length: int = Field(default=20, gt=0)
    default_beam_size: int = Field(default=1, ge=1)
    max_beam_size: int = Field(default=8, ge=1)
    length_penalty: float = Field(default=0.0, ge=0, description="GNMT alpha; 0 = raw log-prob")

    @model_validator(mode="after")
    def _limits(self) -> SequenceDecoding:
        if self.default_max_length > self.max_length:
            raise ValueError("default_max_length exceeds max_length")
        if self.default_beam_size > self.max_beam_size:
            raise ValueError("default_beam_size exceeds max_beam_size")
        return self


class BoxDetection(Strict):
    """Raw per-location boxes and class scores -> thresholded, class-aware-NMS'd detections
    in original pixels (:mod:`serving.imaging.detection`)."""

    kind: Literal["detection"]
    boxes_output: str = Field(description="[batch, N, 4] boxes in model-input pixels")
    scores_output: str = Field(description="[batch, N, classes] scores in [0, 1]")
    labels: str = Field(description="file in the model folder, one label per class")
    box_format: Literal["xyxy", "cxcywh"] = "xyxy"
    score_threshold: float = Field(default=0.3, ge=0, le=1, description="default; per request")
    iou_threshold: float = Field(default=0.5, gt=0, le=1, description="NMS overlap limit")
    max_detections: int = Field(default=100, gt=0, description="default; per request")
    pre_nms_top_k: int = Field(default=1000, gt=0, description="best candidates NMS sees")


class PixelSegmentation(Strict):
    """Per-pixel class scores -> class map in original pixels, as RLE or PNG
    (:mod:`serving.imaging.segmentation`)."""

    kind: Literal["segmentation"]
    output: str = Field(description="[batch, classes, H, W] logits or probabilities")
    labels: str = Field(description="file in the model folder, one label per class channel")
    background: int | None = Field(
        default=0, ge=0, description="class left out of per-class masks and drawn transparent"
    )


Postprocess = Annotated[
    SoftmaxTopK | SequenceDecoding | BoxDetection | PixelSegmentation | TensorOnly,
    Field(discriminator="kind"),
]


class TextInput(Strict):
    """How a text (a question) becomes token ids, by :mod:`serving.text`."""

    input: str = Field(description="model input receiving int64 ids [batch, max_length]")
    lengths_input: str | None = Field(
        default=None, description="model input receiving the count of real tokens [batch]"
    )
    vocabulary: str = Field(description="file in the model folder, one token per line")
    max_length: int = Field(gt=0, description="longer texts are rejected with 400")


class Embedding(Strict):
    """The output holding an image's feature vector ``[batch, D]``; ``/v1/embed`` L2-normalises
    it (for a classifier: the pooled penultimate features, Razavian et al. 2014)."""

    output: str


class Explain(Strict):
    """What class activation maps need (Zhou et al., CVPR 2016; :mod:`serving.imaging.cam`).

    The map of class k is ``sum_c W[k, c] * F[c]``: the last feature map ``F`` (a model output)
    weighted by the final linear layer's weights ``W`` (a file beside the config).
    """

    feature_map_output: str = Field(description="[batch, C, h, w] output the pooling reads")
    class_weights: str = Field(description=".npy file in the model folder, [classes, C] float32")
    box_threshold: float = Field(
        default=0.2, gt=0, lt=1, description="fraction of the map's peak kept for the box"
    )


class Batching(Strict):
    max_batch_size: int = Field(default=8, ge=1, description="rows per ONNX Runtime call")
    max_queue_delay_ms: float = Field(
        default=0.0, ge=0, description="how long a batch may wait to fill once the runner is free"
    )
    preferred_batch_sizes: list[int] = Field(default_factory=list)
    max_queue_size: int = Field(default=256, ge=1, description="queued rows before 503")
    default_timeout_ms: float | None = Field(
        default=None, gt=0, description="per-request deadline unless the request sets one"
    )

    @model_validator(mode="after")
    def _preferred_fit(self) -> Batching:
        bad = [s for s in self.preferred_batch_sizes if not 1 <= s <= self.max_batch_size]
        if bad:
            raise ValueError(f"preferred_batch_sizes {bad} outside 1..max_batch_size")
        return self


class Runtime(Strict):
    providers: list[str] = Field(
        default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
        description="in order of preference; those not installed are skipped",
    )
    instances: int = Field(default=1, ge=1, description="concurrent ONNX Runtime runs")
    intra_op_threads: int = Field(default=0, ge=0, description="0 lets ONNX Runtime decide")
    allow_spinning: bool = Field(
        default=False, description="busy-wait threads: faster alone, starves decoding on few cores"
    )
    warmup_batch_sizes: list[int] = Field(default_factory=lambda: [1])


class Card(Strict):
    """How the model was made and how well it does; shown by ``GET /v1/models/{name}``."""

    summary: str
    source: str = Field(description="where the weights came from")
    license: str
    training_data: str
    reproduce: str = Field(description="the command that rebuilds the model folder")
    metrics: dict[str, Any] = Field(default_factory=dict)
    notes: str | None = None


class ModelConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    task: Task
    description: str = ""
    default_version: int | None = Field(default=None, description="highest version if unset")
    default_for_task: bool = Field(default=False, description="chosen when a request names none")
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)
    preprocess: Preprocess | None = None
    text: TextInput | None = None
    postprocess: Postprocess = TensorOnly(kind="none")
    embedding: Embedding | None = None
    explain: Explain | None = None
    batching: Batching = Batching()
    runtime: Runtime = Runtime()
    card: Card
    extra: dict[str, Any] = Field(
        default_factory=dict, description="task-specific settings read by that task's pipeline"
    )

    @model_validator(mode="after")
    def _references(self) -> ModelConfig:
        inputs = {t.name for t in self.inputs}
        outputs = {t.name for t in self.outputs}
        if self.preprocess is not None and self.preprocess.input not in inputs:
            raise ValueError(f"preprocess.input {self.preprocess.input!r} is not among inputs")
        if self.text is not None:
            missing = {self.text.input, self.text.lengths_input or self.text.input} - inputs
            if missing:
                raise ValueError(f"text inputs {sorted(missing)} are not among inputs")
        for attr in ("output", "boxes_output", "scores_output"):
            out = getattr(self.postprocess, attr, None)
            if out is not None and out not in outputs:
                raise ValueError(f"postprocess.{attr} {out!r} is not among outputs")
        for field, out in (
            ("embedding.output", self.embedding and self.embedding.output),
            ("explain.feature_map_output", self.explain and self.explain.feature_map_output),
        ):
            if out and out not in outputs:
                raise ValueError(f"{field} {out!r} is not among outputs")
        return self


class ConfigError(ValueError):
    """A config that cannot be served; the message names the file and the offending fields."""


def load_config(path: Path) -> ModelConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: config must be a mapping")
    try:
        config = ModelConfig.model_validate(raw)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: invalid config: {fields}") from exc
    if config.name != path.parent.name:
        raise ConfigError(f"{path}: name {config.name!r} differs from folder {path.parent.name!r}")
    return config
