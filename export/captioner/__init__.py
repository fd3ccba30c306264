"""Image captioning on generated scenes: MobileNetV2 encoder + attention LSTM decoder."""
