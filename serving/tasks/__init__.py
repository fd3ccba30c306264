"""Task pipelines, keyed by the ``task`` field of a model config."""

from __future__ import annotations

from serving.repository import PipelineFactory
from serving.tasks.captioning import CaptioningPipeline
from serving.tasks.classification import ClassificationPipeline
from serving.tasks.detection import DetectionPipeline
from serving.tasks.faces import FaceDetectionPipeline, FaceEmbeddingPipeline
from serving.tasks.segmentation import SegmentationPipeline
from serving.tasks.vqa import VqaPipeline

PIPELINES: dict[str, PipelineFactory] = {
    "classification": ClassificationPipeline,
    "detection": DetectionPipeline,
    "segmentation": SegmentationPipeline,
    "captioning": CaptioningPipeline,
    "vqa": VqaPipeline,
    "face_detection": FaceDetectionPipeline,
    "face_embedding": FaceEmbeddingPipeline,
}
