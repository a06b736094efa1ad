"""Training: the loop, EMA weights and the learning-rate schedule."""

from seqflow.training.ema import EMA
from seqflow.training.schedule import warmup_cosine
from seqflow.training.trainer import (
    Progress,
    Trainer,
    TrainingDivergedError,
    TrainingSet,
)

__all__ = [
    "EMA",
    "Progress",
    "Trainer",
    "TrainingDivergedError",
    "TrainingSet",
    "warmup_cosine",
]
