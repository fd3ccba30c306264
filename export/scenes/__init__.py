"""Seeded synthetic scenes: coloured shapes composited onto real photographs.

Every scene comes with its scene graph (objects, classes, colours, positions, sizes, what is
hidden by what), so detection, segmentation, captioning and VQA data all derive from one source.
"""
