"""Fovea: a batched ONNX Runtime inference server for vision models."""

__version__ = "0.1.0"
