"""Layer 2, chips: accelerator specs and their physics (roofline, power vs utilisation, memory)."""

from fivelayer.chips.accelerator import PRECISIONS, Accelerator, Calibration, Precision, ScaleUp
from fivelayer.chips.performance import ChipSpec, device_power_w, roofline_time_s

__all__ = [
    "PRECISIONS",
    "Accelerator",
    "Calibration",
    "ChipSpec",
    "Precision",
    "ScaleUp",
    "device_power_w",
    "roofline_time_s",
]
