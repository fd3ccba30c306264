"""Face models: MTCNN detector stages and FaceNet (Inception-ResNet-v1) embedders."""
