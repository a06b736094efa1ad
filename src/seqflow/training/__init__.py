"""Training: the loop, its two tasks (sequences, libraries), EMA weights and the schedule."""

from seqflow.training.batches import SequenceTask, TrainingSet
from seqflow.training.ema import EMA
from seqflow.training.library import LibrarySet, LibraryTask
from seqflow.training.schedule import warmup_cosine
from seqflow.training.trainer import (
    Progress,
    Task,
    Trainer,
    TrainingDivergedError,
    TrainingStopped,
)

__all__ = [
    "EMA",
    "LibrarySet",
    "LibraryTask",
    "Progress",
    "SequenceTask",
    "Task",
    "Trainer",
    "TrainingDivergedError",
    "TrainingSet",
    "TrainingStopped",
    "warmup_cosine",
]
