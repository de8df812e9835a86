"""Options and results of the adaptation commands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AdaptOptions:
    """`hotline adapt asr`: fine-tune Whisper on one dialect's manifest, export, register."""

    dialect: str
    train: Path
    dev: Path | None
    out: Path
    base: Path  # a faster-whisper (CTranslate2) model directory to start from
    registry: Path | None = None  # the dialect registry file to register the result in; None: do not
    epochs: int = 5
    max_minutes: float | None = None  # from the start: stop after the step that passes this, save, export
    lora: bool = True  # False: full fine-tuning of the trained part
    rank: int = 16
    tune_encoder: bool = False  # frozen encoder: its states are computed once per clip and cached
    learning_rate: float | None = None  # None: 1e-3 with LoRA, 1e-5 without
    batch_size: int = 8
    device: str = "cpu"
    threads: int = 2
    limit: int | None = None  # at most N training clips
    dev_limit: int | None = None
    margin_s: float = 3.0  # silence after the utterance in its encoder window, as the recognizer serves
    save_every: int = 50  # steps between checkpoints
    beam_size: int = 5  # the decoding option registered for the dialect
    seed: int = 0
    export: bool = True
    quantization: str = "int8"


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    step: int
    loss: float
    dev_cer: float | None
    seconds: float


@dataclass(frozen=True)
class AdaptResult:
    dialect: str
    model_dir: Path | None  # the exported faster-whisper model
    registry: Path | None
    steps: int
    epochs_done: float
    train_clips: int
    train_seconds: float  # wall time of training steps in this run (caching and export not counted)
    total_seconds: float
    device: str
    threads: int
    dev_cer_before: float | None
    dev_cer_after: float | None
    stopped_by_time: bool
    history: tuple[EpochReport, ...] = ()
