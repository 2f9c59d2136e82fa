"""The TuSimple workload: label files (tusimple), the official Accuracy/FP/FN metric (evaluate), and
synthetic data in the real format (synth). No torch, no DDP."""
