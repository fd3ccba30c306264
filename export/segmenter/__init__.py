"""LR-ASPP shape segmenter on the MobileNetV2 pyramid."""
