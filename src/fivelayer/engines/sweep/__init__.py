"""Sweeps, Monte Carlo and optimisation over scenarios, and studies of many serving simulations
(``method: simulate``), in-process or on a Dask cluster.

>>> from fivelayer.engines.sweep import study_from_text
>>> study = study_from_text("name: t\\nparameters: [{path: economics.discount_rate, values: [0.06, 0.08]}]")
>>> [p.name for p in study.parameters]
['economics.discount_rate']
"""

from fivelayer.engines.sweep.analysis import first_order_indices, optimum, pareto_front, percentiles, tornado
from fivelayer.engines.sweep.evaluate import Evaluator, fast_path_problem
from fivelayer.engines.sweep.runner import RunReport, run_study
from fivelayer.engines.sweep.sampling import design
from fivelayer.engines.sweep.spec import (
    OUTPUTS,
    SIMULATE_OUTPUTS,
    Parameter,
    Study,
    StudyError,
    load_study,
    study_from_text,
)

__all__ = [
    "OUTPUTS",
    "SIMULATE_OUTPUTS",
    "Evaluator",
    "Parameter",
    "RunReport",
    "Study",
    "StudyError",
    "design",
    "fast_path_problem",
    "first_order_indices",
    "load_study",
    "optimum",
    "pareto_front",
    "percentiles",
    "run_study",
    "study_from_text",
    "tornado",
]
