"""Training: the loop, EMA weights and the learning-rate schedule."""

from seqflow.training.ema import EMA
from seqflow.training.library import LibrarySet, LibraryTrainer
from seqflow.training.schedule import warmup_cosine
from seqflow.training.trainer import (
    Progress,
    Trainer,
    TrainingDivergedError,
    TrainingSet,
    TrainingStopped,
)

__all__ = [
    "EMA",
    "LibrarySet",
    "LibraryTrainer",
    "Progress",
    "Trainer",
    "TrainingDivergedError",
    "TrainingSet",
    "TrainingStopped",
    "warmup_cosine",
]
