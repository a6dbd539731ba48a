"""Training objectives: what loss a step computes from a batch."""

from scns.objectives.base import Objective, StepOutput
from scns.objectives.supervised import SupervisedObjective

__all__ = ["Objective", "StepOutput", "SupervisedObjective"]
