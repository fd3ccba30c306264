"""``fovea train classifier``: transfer learning from the ImageNet backbone to a photo folder."""
