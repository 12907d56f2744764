"""Training the learned parts (`policy-qa train`, the `train` extra): mining pairs, the question tower and
the cross-encoders from e5's weights, int8 ONNX export. Nothing here runs while answering."""
