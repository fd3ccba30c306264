"""Task pipelines, keyed by the ``task`` field of a model config."""

from __future__ import annotations

from serving.core.repository import PipelineFactory
from serving.tasks.caption.pipeline import CaptioningPipeline
from serving.tasks.classify import ClassificationPipeline
from serving.tasks.detect import DetectionPipeline
from serving.tasks.faces.pipelines import FaceDetectionPipeline, FaceEmbeddingPipeline
from serving.tasks.segment import SegmentationPipeline
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
