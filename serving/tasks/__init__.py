"""Task pipelines, keyed by the ``task`` field of a model config."""

from __future__ import annotations

from serving.repository import PipelineFactory
from serving.tasks.classification import ClassificationPipeline

PIPELINES: dict[str, PipelineFactory] = {
    "classification": ClassificationPipeline,
}
