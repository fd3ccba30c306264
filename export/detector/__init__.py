"""Anchor-free (FCOS-style) shape detector on the MobileNetV2 pyramid."""
