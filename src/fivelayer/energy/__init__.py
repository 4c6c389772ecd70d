"""Layer 1, energy: grid regions, supply options, tariffs, hourly dispatch, carbon accounting."""

from fivelayer.energy.grid import GridRegion

__all__ = ["GridRegion"]
