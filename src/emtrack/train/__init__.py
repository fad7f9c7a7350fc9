"""Self-supervised training: clip sampling, the EM trainer and held-out accuracy."""

from emtrack.train.trainer import EpochRecord, TrainConfig, TrainResult, train

__all__ = ["EpochRecord", "TrainConfig", "TrainResult", "train"]
