"""What to send: one workload class per endpoint, found by name in :data:`WORKLOADS`.

Adding a task endpoint is a few lines: subclass :class:`ImageTask` with its path and register it.
Every workload turns the photos into a short list of prepared requests, sent in turn.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import numpy as np
import orjson

from loadtest import payloads, tensors
from loadtest.errors import LoadTestError
from loadtest.payloads import Photo
from loadtest.transport import Client, PreparedRequest, error_message


@dataclass(frozen=True)
class WorkloadOptions:
    photos: list[Photo]
    model: str | None = None
    version: int | None = None
    batch: int = 1  # images (rows) per request
    encoding: str = "multipart"  # task endpoints: multipart | json
    params: dict[str, Any] = field(default_factory=dict)  # task options (top_k=3, ...)
    tensor_format: str = "binary"  # v2: binary | json
    shapes: dict[str, list[int]] = field(default_factory=dict)  # v2: --shape overrides
    seed: int = 0


class Workload(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    sample_photos: ClassVar[tuple[str, ...]] = payloads.SAMPLE_PHOTOS  # without --images

    def __init__(self, options: WorkloadOptions) -> None:
        self.options = options
        self.model: str | None = options.model  # the model whose server metrics are read

    @abstractmethod
    async def prepare(self, client: Client) -> list[PreparedRequest]:
        """The requests to cycle through; may read metadata from the server first."""


WORKLOADS: dict[str, type[Workload]] = {}


def register(cls: type[Workload]) -> type[Workload]:
    WORKLOADS[cls.name] = cls
    return cls


class ImageTask(Workload):
    """A task endpoint that takes images (multipart or base64 JSON) plus task options."""

    path: ClassVar[str]
    images_per_request: ClassVar[int | None] = None  # fixed by the endpoint, else --batch
    default_params: ClassVar[dict[str, Any]] = {}

    async def prepare(self, client: Client) -> list[PreparedRequest]:
        opts = self.options
        per_request = self.images_per_request or opts.batch
        if opts.batch not in (1, per_request):
            raise LoadTestError(f"{self.path} takes {per_request} image(s) a request: drop --batch")
        fields = {**self.default_params, **opts.params}
        if opts.model is not None:
            fields["model"] = opts.model
        if opts.version is not None:
            fields["version"] = opts.version
        requests = []
        for group in payloads.groups(opts.photos, per_request):
            if opts.encoding == "json":
                doc = {"images": [payloads.b64(p) for p in group], **fields}
                body, ctype, path = orjson.dumps(doc), "application/json", self.path
            else:
                body, ctype = payloads.multipart(group)
                query = urlencode({k: _text(v) for k, v in fields.items()}, doseq=True)
                path = f"{self.path}?{query}" if query else self.path
            requests.append(PreparedRequest(path, body, {"Content-Type": ctype}, len(group)))
        return requests


def _text(value: Any) -> str | list[str]:
    """Query-string form of an option (lists repeat the key, like ``question=a&question=b``)."""
    if isinstance(value, list):
        return [str(_text(v)) for v in value]
    return str(value).lower() if isinstance(value, bool) else str(value)


@register
class Classify(ImageTask):
    name = "classify"
    summary = "POST /v1/classify (top-k labels)"
    path = "/v1/classify"


@register
class Detect(ImageTask):
    name = "detect"
    summary = "POST /v1/detect (boxes)"
    path = "/v1/detect"


@register
class Segment(ImageTask):
    name = "segment"
    summary = "POST /v1/segment (masks)"
    path = "/v1/segment"


@register
class Caption(ImageTask):
    name = "caption"
    summary = "POST /v1/caption (text)"
    path = "/v1/caption"


@register
class Vqa(ImageTask):
    name = "vqa"
    summary = "POST /v1/vqa (one image, --param question=...; a generic question by default)"
    path = "/v1/vqa"
    images_per_request = 1
    default_params: ClassVar[dict[str, Any]] = {"question": "what is in the image?"}


FACE_PHOTOS = ("astronaut",)  # the sample photo with a face (verify: the same face twice)


@register
class FacesDetect(ImageTask):
    name = "faces-detect"
    summary = "POST /v1/faces/detect (face boxes and landmarks)"
    path = "/v1/faces/detect"
    sample_photos = FACE_PHOTOS


@register
class FacesEmbed(ImageTask):
    name = "faces-embed"
    summary = "POST /v1/faces/embed (face embeddings)"
    path = "/v1/faces/embed"
    sample_photos = FACE_PHOTOS


@register
class FacesVerify(ImageTask):
    name = "faces-verify"
    summary = "POST /v1/faces/verify (two images per request)"
    path = "/v1/faces/verify"
    sample_photos = FACE_PHOTOS
    images_per_request = 2


@register
class V2Infer(Workload):
    """Any model over the v2 tensor protocol, inputs generated from ``GET /v2/models/{m}``."""

    name = "v2"
    summary = "POST /v2/models/{m}/infer (tensors from the model's metadata; needs --model)"

    async def prepare(self, client: Client) -> list[PreparedRequest]:
        opts = self.options
        if opts.model is None:
            raise LoadTestError("the v2 workload needs --model")
        base = f"/v2/models/{quote(opts.model, safe='')}"
        if opts.version is not None:
            base += f"/versions/{opts.version}"
        status, body = await client.get(base)
        if status != 200:
            raise LoadTestError(f"GET {base} answered {status}: {error_message(body)}")
        meta = orjson.loads(body)
        datatypes = {s["name"]: s["datatype"] for s in meta["inputs"]}
        outputs = [s["name"] for s in meta.get("outputs", [])]
        rng = np.random.default_rng(opts.seed)
        requests = []
        for group in payloads.groups(opts.photos, opts.batch):
            try:
                inputs = {
                    s["name"]: tensors.make_input(
                        s, tensors.resolve_shape(s, opts.batch, opts.shapes), group, rng
                    )
                    for s in meta["inputs"]
                }
            except ValueError as exc:
                raise LoadTestError(str(exc)) from None
            rows = next(iter(inputs.values())).shape[0] if inputs else 1
            if opts.tensor_format == "json":
                requests.append(
                    PreparedRequest(
                        base + "/infer",
                        tensors.json_body(inputs, datatypes),
                        {"Content-Type": "application/json"},
                        rows,
                    )
                )
            else:
                data, header = tensors.binary_body(inputs, datatypes, outputs)
                headers = {
                    "Content-Type": "application/octet-stream",
                    "Inference-Header-Content-Length": str(header),
                }
                requests.append(PreparedRequest(base + "/infer", data, headers, rows))
        return requests
