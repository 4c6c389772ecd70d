"""Training-run planner: layouts, step time, failures and goodput, energy, cost, carbon; calibration."""

from fivelayer.engines.training.calibration import llmcarbon_comparison, reference_runs, validate_training
from fivelayer.engines.training.layouts import TrainingEfficiency
from fivelayer.engines.training.planner import TrainingCase, TrainingPrediction, predict_training

__all__ = [
    "TrainingCase",
    "TrainingEfficiency",
    "TrainingPrediction",
    "llmcarbon_comparison",
    "predict_training",
    "reference_runs",
    "validate_training",
]
