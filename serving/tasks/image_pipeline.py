"""The pipeline shape most tasks share: one preprocessed image per batcher row.

The config's ``preprocess`` builds the preprocessor, its ``postprocess`` (of the kind the task
needs) carries the labels file; images are prepared on the decode pool, then run as one
submission to the model's batcher -- once they fit in the version's decode window, so at most a
few batches of admitted rows are held as model-ready tensors at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np

from serving.core.deadline import Deadline
from serving.core.runtime import Tensors
from serving.imaging.prepared import Prepared, prepare_all, prepare_keeping_pixels
from serving.imaging.preprocess import ImagePreprocessor, PreparedImage
from serving.settings import Settings
from serving.tasks.contract import Pipeline

if TYPE_CHECKING:
    from serving.core.repository import ModelVersion


class ImagePipeline(Pipeline):
    needs: ClassVar[type]  # the postprocess config class this task reads
    needs_kind: ClassVar[str]  # its ``kind``, for the error message

    def __init__(self, version: ModelVersion, settings: Settings, pool: Executor) -> None:
        super().__init__(version, settings, pool)
        config = version.config
        if config.preprocess is None or not isinstance(config.postprocess, self.needs):
            raise ValueError(
                f"a {config.task} model needs preprocess and {self.needs_kind} postprocess"
            )
        self.post: Any = config.postprocess
        self.preprocessor = ImagePreprocessor(
            config.preprocess, max_pixels=settings.max_image_pixels
        )

    def labels_for(self, output: str, *, axis: int = -1, what: str = "labels") -> list[str]:
        """The postprocess labels file, checked against the class axis of ``output``."""
        labels = self.side_file_lines(self.post.labels)
        classes = next(o.shape[axis] for o in self.version.config.outputs if o.name == output)
        if classes > 0 and classes != len(labels):
            raise ValueError(f"{self.post.labels} has {len(labels)} {what} for {classes} classes")
        return labels

    async def infer_images(
        self, images: Sequence[bytes], deadline: Deadline
    ) -> tuple[list[PreparedImage], list[Tensors]]:
        input_name = self.preprocessor.config.input
        return await infer_prepared(
            self.version, self.pool, self.preprocessor, images, input_name, deadline
        )

    async def infer_keeping_pixels(
        self, images: Sequence[bytes], deadline: Deadline, *, full_resolution: bool
    ) -> tuple[list[Prepared], list[Tensors]]:
        """Like :meth:`infer_images`, keeping the decoded pixels (at full resolution if they
        are to be drawn on)."""
        keep = partial(prepare_keeping_pixels, self.preprocessor, full_resolution=full_resolution)
        input_name = self.preprocessor.config.input
        return await infer_prepared(self.version, self.pool, keep, images, input_name, deadline)


class _HasTensor(Protocol):
    @property
    def tensor(self) -> np.ndarray: ...


_P = TypeVar("_P", bound=_HasTensor)


async def infer_prepared(
    version: ModelVersion,
    pool: Executor,
    prepare: Callable[[bytes], _P],
    images: Sequence[bytes],
    input_name: str,
    deadline: Deadline,
) -> tuple[list[_P], list[Tensors]]:
    """Prepare ``images`` on the decode pool and run them as one submission to ``version``,
    inside its decode window, as ``input_name`` rows (the one path every image task takes to
    its model)."""
    async with version.decode_window.hold(len(images), deadline):
        prepared = await prepare_all(pool, prepare, images)
        rows = [{input_name: p.tensor} for p in prepared]
        return prepared, await version.infer(rows, timeout_s=deadline.remaining_s())
