"""Per-trainer step builders of benchmarks/train_step.py (see README.md here)."""
