"""The vectorized rule and anomaly engine: a pure core (arrays and ``now`` in, detections out)."""
