"""Layer 2, chips: accelerator specs and their physics (roofline, power vs utilisation, memory)."""

from fivelayer.chips.accelerator import PRECISIONS, Accelerator, Calibration, Precision, ScaleUp

__all__ = ["PRECISIONS", "Accelerator", "Calibration", "Precision", "ScaleUp"]
