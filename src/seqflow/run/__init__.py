"""The run folder of ``fit``: file names, checkpoints, the resume policy, the lock, stop
signals, failure clean-up, the metrics log and the training data written with the run."""

from seqflow.checkpoint import MODEL_FILE, STATE_FILE
from seqflow.run.checkpoints import step_folders, write_checkpoint
from seqflow.run.files import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    LIBRARIES_FILE,
    METRICS_FILE,
    TRAIN_FILE,
    step_folder,
)
from seqflow.run.folder import train_in_folder
from seqflow.run.lock import LOCK_FILE, check_free
from seqflow.run.resume import (
    READING_KEYS,
    check_resumable,
    check_same_data,
    data_source,
    intact_checkpoint,
    recorded_data,
)
from seqflow.run.stamps import check_data_unchanged, data_stamps
from seqflow.run.training_set import write_training_set

__all__ = [
    "CHECKPOINTS_DIR",
    "CONFIG_FILE",
    "LIBRARIES_FILE",
    "LOCK_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "READING_KEYS",
    "STATE_FILE",
    "TRAIN_FILE",
    "check_data_unchanged",
    "check_free",
    "check_resumable",
    "check_same_data",
    "data_source",
    "data_stamps",
    "intact_checkpoint",
    "recorded_data",
    "step_folder",
    "step_folders",
    "train_in_folder",
    "write_checkpoint",
    "write_training_set",
]
