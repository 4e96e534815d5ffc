"""Text embedding: ONNX Runtime encoders built from bundled or user-supplied weights."""
