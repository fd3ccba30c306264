"""VQA on easy-VQA: MUTAN (Tucker fusion) over a frozen MobileNetV2 and a GRU question encoder."""
