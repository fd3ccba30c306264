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
    shape: list[int] = Field(
        description="-1 marks a dynamic axis; the first axis is the batch unless "
        "batching.max_batch_size is 0"
    )
    min_shape: list[int] | None = Field(
        default=None,
        description="smallest size of each axis the model accepts (e.g. a CNN's receptive field "
        "on dynamic spatial axes); checked on tensor requests",
    )
    range: tuple[float, float] | None = Field(
        default=None,
        description="inclusive [min, max] of valid values (e.g. token ids below the vocabulary "
        "size); checked on tensor requests",
    )

    @field_validator("shape")
    @classmethod
    def _dims(cls, shape: list[int]) -> list[int]:
        if any(d < -1 or d == 0 for d in shape):
            raise ValueError("dimensions are positive or -1 (dynamic)")
        return shape

    @model_validator(mode="after")
    def _bounds(self) -> TensorSpec:
        if self.min_shape is not None:
            if len(self.min_shape) != len(self.shape) or any(d < 0 for d in self.min_shape):
                raise ValueError("min_shape needs one non-negative size per axis of shape")
            if any(0 < s < m for s, m in zip(self.shape, self.min_shape, strict=True)):
                raise ValueError("min_shape exceeds a fixed axis of shape")
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError("range is [min, max] with min <= max")
        return self


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
    window_only: bool = Field(
        default=False,
        description="resize only the pixels the crop keeps: about 2x faster on photos, and at "
        "most one uint8 level off the full resize on a few pixels in 10,000 (off: bit-exact "
        "with torchvision's Resize + CenterCrop)",
    )


class Normalize(Strict):
    """``(pixel * scale - mean) / std`` per channel, in the model's channel order.

    ``scale`` 1/255 feeds 0-1 pixels, 1 feeds 0-255; the defaults leave values unnormalised."""

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
    channel_order: Literal["RGB", "BGR"] = Field(
        default="RGB", description="BGR for models trained on OpenCV-decoded images"
    )
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


DetectionFormat = Literal["boxes_scores", "yolov8", "yolov5", "torchvision", "detr"]

# The outputs each detection format reads (implementations: serving.imaging.heads).
DETECTION_OUTPUTS: dict[str, tuple[str, ...]] = {
    "boxes_scores": ("boxes_output", "scores_output"),
    "yolov8": ("output",),
    "yolov5": ("output",),
    "torchvision": ("boxes_output", "scores_output", "labels_output"),
    "detr": ("logits_output", "boxes_output"),
}


class BoxDetection(Strict):
    """A detector's outputs -> thresholded, NMS'd detections in original pixels.

    ``format`` names the output layout (one shared decoder each, :mod:`serving.imaging.heads`):

    * ``boxes_scores``: ``boxes [N, A, 4]`` (``box_format``, model-input pixels) and
      ``scores [N, A, C]`` in [0, 1];
    * ``yolov8``: Ultralytics v8/11 ``output [N, 4+C, A]``: centre boxes, class scores;
    * ``yolov5``: ``output [N, A, 5+C]``: centre boxes, objectness, class scores;
    * ``torchvision``: post-processing inside the model (SSD, Faster R-CNN, RetinaNet, FCOS):
      ``boxes [K, 4]`` xyxy, ``scores [K]``, ``labels [K]`` (int), variable K, batch axis or not;
    * ``detr``: ``logits [N, Q, C+1]`` (last class = no object), ``boxes [N, Q, 4]``
      normalised cxcywh of the model input; no NMS.
    """

    kind: Literal["detection"]
    format: DetectionFormat = "boxes_scores"
    output: str | None = Field(default=None, description="the single output of YOLO heads")
    boxes_output: str | None = None
    scores_output: str | None = None
    labels_output: str | None = Field(default=None, description="int class ids (torchvision)")
    logits_output: str | None = Field(default=None, description="class logits (detr)")
    labels: str = Field(description="file in the model folder, one label per class id")
    box_format: Literal["xyxy", "cxcywh"] = Field(
        default="xyxy", description="boxes_output's layout for format boxes_scores"
    )
    score_threshold: float = Field(default=0.3, ge=0, le=1, description="default; per request")
    iou_threshold: float = Field(default=0.5, gt=0, le=1, description="NMS overlap limit")
    max_detections: int = Field(default=100, gt=0, description="default; per request")
    pre_nms_top_k: int = Field(default=1000, gt=0, description="best candidates NMS sees")
    multi_label: bool = Field(
        default=True,
        description="a location may propose several classes; false keeps its best class only "
        "(Ultralytics' predict)",
    )

    @model_validator(mode="after")
    def _format_outputs(self) -> BoxDetection:
        needed = DETECTION_OUTPUTS[self.format]
        missing = [f for f in needed if getattr(self, f) is None]
        if missing:
            raise ValueError(f"format {self.format!r} needs {', '.join(missing)}")
        unused = [f for f in _OUTPUT_FIELDS if f not in needed and getattr(self, f) is not None]
        if unused:
            raise ValueError(
                f"format {self.format!r} reads only {', '.join(needed)}; remove {', '.join(unused)}"
            )
        return self


_OUTPUT_FIELDS = ("output", "boxes_output", "scores_output", "labels_output", "logits_output")


class PixelSegmentation(Strict):
    """Per-pixel class scores -> class map in original pixels, as RLE or PNG
    (:mod:`serving.imaging.segmentation`)."""

    kind: Literal["segmentation"]
    output: str = Field(
        description="[batch, classes, H, W] logits or probabilities, at the model input's size "
        "(torchvision) or a fraction of it (SegFormer-style, resized bilinearly to the image)"
    )
    labels: str = Field(description="file in the model folder, one label per class channel")
    background: int | None = Field(
        default=0, ge=0, description="class left out of per-class masks and drawn transparent"
    )


class FaceCascade(Strict):
    """MTCNN: this model is P-Net; R-Net and O-Net are other models in the store, run by the
    server's cascade (:mod:`serving.tasks.faces.cascade`)."""

    kind: Literal["face_cascade"]
    rnet_model: str = Field(description="the R-Net stage model (24x24 crops)")
    onet_model: str = Field(description="the O-Net stage model (48x48 crops)")
    min_face: float = Field(default=20.0, gt=0, description="smallest face searched, in pixels")
    factor: float = Field(default=0.709, gt=0, lt=1, description="image pyramid scale step")
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    max_side: int = Field(default=1024, ge=48, description="detection works at this size")


class FaceEmbedding(Strict):
    """Aligned face crops -> unit embeddings; faces come from ``detector_model``."""

    kind: Literal["face_embedding"]
    output: str = Field(description="the [batch, D] embedding output")
    detector_model: str = Field(description="the face_detection model that finds the faces")
    input_size: int = Field(gt=0, description="side of the square aligned crop")
    template: list[tuple[float, float]] = Field(
        min_length=5, max_length=5, description="where the five landmarks go in the crop"
    )
    threshold: float = Field(ge=-1, le=1, description="cosine similarity for 'same person'")


Postprocess = Annotated[
    SoftmaxTopK
    | SequenceDecoding
    | BoxDetection
    | PixelSegmentation
    | FaceCascade
    | FaceEmbedding
    | TensorOnly,
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


class ImageEncoder(Strict):
    """The image half of a model split in two (one image, many questions: one backbone pass).

    ``model`` (another model in the store, with the ``preprocess`` for the image) maps pixels
    to ``output``; this model receives that tensor as its input ``input``.
    """

    model: str
    output: str
    input: str


class Batching(Strict):
    max_batch_size: int = Field(
        default=8,
        ge=0,
        description="rows per ONNX Runtime call; 0: the model has no batch axis (Triton's "
        "meaning), so each request runs alone, still queued and measured",
    )
    max_queue_delay_ms: float = Field(
        default=0.0, ge=0, description="how long a batch may wait to fill once the runner is free"
    )
    cpu_max_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="rows per call when the session runs on ONNX Runtime's CPU provider; on CPU "
        "a batch costs each row about what a lone row costs, so large batches only add latency "
        "and arena memory (loadtest/benchmarks/batch_cost.py measures it per model)",
    )
    preferred_batch_sizes: list[int] = Field(default_factory=list)
    max_queue_size: int = Field(default=256, ge=1, description="queued rows before 503")
    max_in_flight: int | None = Field(
        default=None,
        ge=1,
        description="rows admitted and not yet answered (decoding, queued, running) before a "
        "request is refused with 503 at the door; max_queue_size if unset",
    )
    max_wait_ms: float | None = Field(
        default=None,
        gt=0,
        description="also refuse at the door when the rows in flight plus the request's would "
        "take longer than this to answer at the version's recent rate (per worker), scaled by "
        "a headroom learned under overload so that 99% of answers come within it (it starts "
        "at one half); unset: only max_in_flight bounds the wait",
    )
    default_timeout_ms: float | None = Field(
        default=None, gt=0, description="per-request deadline unless the request sets one"
    )

    @model_validator(mode="after")
    def _preferred_fit(self) -> Batching:
        bad = [s for s in self.preferred_batch_sizes if not 1 <= s <= self.rows_per_run]
        if bad:
            raise ValueError(f"preferred_batch_sizes {bad} outside 1..max_batch_size")
        return self

    @property
    def admission_limit(self) -> int:
        return self.max_in_flight or self.max_queue_size

    @property
    def batched(self) -> bool:
        """Whether tensor shapes start with a batch axis."""
        return self.max_batch_size > 0

    @property
    def rows_per_run(self) -> int:
        return max(self.max_batch_size, 1)

    def rows_per_run_on(self, provider: str) -> int:
        """Rows per call on the session's first provider (the CPU cap applies on CPU only)."""
        if provider == "CPUExecutionProvider" and self.cpu_max_batch_size and self.batched:
            return min(self.rows_per_run, self.cpu_max_batch_size)
        return self.rows_per_run


class Runtime(Strict):
    providers: list[str] = Field(
        default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
        description="in order of preference; those not installed are skipped",
    )
    instances: int = Field(default=1, ge=1, description="concurrent ONNX Runtime runs")
    intra_op_threads: int = Field(default=0, ge=0, description="0: the server's thread budget")
    allow_spinning: bool = Field(
        default=False, description="busy-wait threads: faster alone, starves decoding on few cores"
    )
    lone_runs_use_all_cores: bool = Field(
        default=False,
        description="on CPU, a run that starts while no other run is in flight on this machine "
        "(any worker, any model) uses every usable core: lower latency at low load, through a "
        "second session (twice the model's memory)",
    )
    warmup_batch_sizes: list[int] = Field(default_factory=lambda: [1])
    cpu_mem_arena: bool = Field(
        default=True,
        description="ONNX Runtime's CPU memory arena: faster runs, but it keeps (never returns) "
        "memory for the largest batch seen; off, idle memory is given back",
    )
    mem_pattern: bool = Field(
        default=True,
        description="ONNX Runtime plans each input shape's buffers once and reuses them",
    )
    provider_options: dict[str, dict[str, str | int]] = Field(
        default_factory=dict,
        description="per provider, merged over the server's defaults (e.g. CUDA's device_id)",
    )
    io_binding: bool | None = Field(
        default=None,
        description="bind inputs/outputs explicitly (one host-device copy each way); "
        "unset: on for GPU providers, off on CPU",
    )


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
    image_encoder: ImageEncoder | None = None
    postprocess: Postprocess = TensorOnly(kind="none")
    embedding: Embedding | None = None
    explain: Explain | None = None
    batching: Batching = Batching()
    runtime: Runtime = Runtime()
    card: Card

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
        if self.image_encoder is not None and self.image_encoder.input not in inputs:
            raise ValueError(f"image_encoder.input {self.image_encoder.input!r} is not an input")
        for attr in _OUTPUT_FIELDS:
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
