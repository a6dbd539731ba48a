"""Training objectives: what loss a step computes from a batch."""

from scns.objectives.base import Objective, StepOutput
from scns.objectives.build import OBJECTIVES, build_objective
from scns.objectives.distill import DistillObjective
from scns.objectives.supervised import SupervisedObjective

__all__ = [
    "OBJECTIVES",
    "DistillObjective",
    "Objective",
    "StepOutput",
    "SupervisedObjective",
    "build_objective",
]
