"""Engines compose the layers: analytic size/yield, serving simulation, training, projection, sweeps."""
