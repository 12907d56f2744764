"""The evaluation: eval sets, metrics, the gate and cross-validation."""
