"""What an ONNX file says about itself: inputs, outputs, shapes, metadata (via ONNX Runtime,
so reading a model needs nothing the server does not already have)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime as ort

from serving.core.datatypes import ORT_TO_V2


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: list[int]  # -1 for symbolic or unknown axes

    def __str__(self) -> str:
        return f"{self.name} {self.datatype} {self.shape}"


@dataclass(frozen=True)
class Graph:
    inputs: list[Tensor]
    outputs: list[Tensor]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str] | None:
        """Class names from Ultralytics' ``names`` metadata (a dict literal, id -> name)."""
        raw = self.metadata.get("names")
        if not raw:
            return None
        try:
            names = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return None
        if isinstance(names, dict) and sorted(names) == list(range(len(names))):
            return [str(names[i]) for i in range(len(names))]
        if isinstance(names, list):
            return [str(n) for n in names]
        return None

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(width, height) from Ultralytics' ``imgsz`` metadata ([height, width] or one int)."""
        raw = self.metadata.get("imgsz")
        if not raw:
            return None
        try:
            size = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return None
        if isinstance(size, int):
            return size, size
        if isinstance(size, list | tuple) and len(size) == 2:
            return int(size[1]), int(size[0])
        return None

    @property
    def is_ultralytics(self) -> bool:
        return self.metadata.get("author", "").startswith("Ultralytics")


def read_graph(path: Path) -> Graph:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def tensors(nodes: list) -> list[Tensor]:
        return [
            Tensor(
                n.name,
                ORT_TO_V2.get(n.type, n.type),
                [d if isinstance(d, int) and d > 0 else -1 for d in n.shape],
            )
            for n in nodes
        ]

    meta = dict(session.get_modelmeta().custom_metadata_map)
    return Graph(tensors(session.get_inputs()), tensors(session.get_outputs()), meta)
