"""The tasks: pipelines keyed by a model config's ``task``, and the endpoints they serve."""

from __future__ import annotations

from serving.core.repository import PipelineFactory
from serving.tasks.caption.pipeline import CaptioningPipeline
from serving.tasks.caption.task import CaptionTask
from serving.tasks.classify import ClassificationPipeline, Classify
from serving.tasks.contract import Task
from serving.tasks.detect import Detect, DetectionPipeline
from serving.tasks.embed import Embed
from serving.tasks.faces.pipelines import FaceDetectionPipeline, FaceEmbeddingPipeline
from serving.tasks.faces.tasks import (
    FaceDetect,
    FaceEmbed,
    FaceEnrol,
    FaceIdentify,
    FaceVerify,
    GalleryForget,
    GalleryList,
)
from serving.tasks.segment import Segment, SegmentationPipeline
from serving.tasks.vqa import Vqa, VqaPipeline

PIPELINES: dict[str, PipelineFactory] = {
    "classification": ClassificationPipeline,
    "detection": DetectionPipeline,
    "segmentation": SegmentationPipeline,
    "captioning": CaptioningPipeline,
    "vqa": VqaPipeline,
    "face_detection": FaceDetectionPipeline,
    "face_embedding": FaceEmbeddingPipeline,
}

TASKS: list[Task] = [
    Classify(),
    Embed(),
    Detect(),
    Segment(),
    CaptionTask(),
    Vqa(),
    FaceDetect(),
    FaceEmbed(),
    FaceVerify(),
    FaceIdentify(),
    FaceEnrol(),
    GalleryList(),
    GalleryForget(),
]
