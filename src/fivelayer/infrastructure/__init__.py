"""Layer 3, infrastructure: systems, racks, network fabric, cooling and PUE, power chain, facility capex."""

from fivelayer.infrastructure.facility import CoolingKind, FacilityDesign
from fivelayer.infrastructure.system import System

__all__ = ["CoolingKind", "FacilityDesign", "System"]
