"""What one hotline process holds: the store, the models (loaded once), the dialogue manager."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.audio import AudioFormat
from core.bundled import resolve
from core.clock import Clock, SystemClock
from core.concurrency import InferencePool
from gateway import db
from gateway.settings import Settings

log = logging.getLogger("hotline.services")

PHRASE_CACHE_SIZE = 256
PHRASE_MAX_CHARS = 40


def load_asr(settings: Settings) -> tuple[Any, Any]:
    """The recognizer's shared models: (WhisperTranscriber, SileroVadModel)."""
    from asr.vad import SileroVadModel
    from asr.whisper import WhisperTranscriber

    s = settings.asr
    path = resolve(s.model, settings.model_dir)
    transcriber = WhisperTranscriber(
        path, device=s.device, compute_type=s.compute_type, cpu_threads=s.threads, beam_size=s.beam_size,
        hotwords=s.hotwords,
    )
    return transcriber, SileroVadModel()


@dataclass
class Services:
    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    ready: bool = False
    load_error: str | None = None
    active_calls: int = 0
    models: dict[str, Any] = field(default_factory=dict)
    pools: dict[str, InferencePool] = field(default_factory=dict)
    _phrases: OrderedDict[tuple[str, AudioFormat], list[bytes]] = field(default_factory=OrderedDict)

    @classmethod
    def open(cls, settings: Settings, clock: Clock | None = None) -> Services:
        """Opens and migrates the store; models come later, with `load_models`."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        engine = db.create_engine_for(url)
        db.migrate_engine(engine)
        return cls(settings, clock or SystemClock(), engine, db.session_factory(engine))

    # ---- loading ---------------------------------------------------------------------------------

    async def load_models(self, parts: tuple[str, ...] = ("asr", "llm", "tts", "kb")) -> None:
        """Loads the models off the event loop, seeds the demo KB into an empty store, then is ready.

        `parts` leaves out what a command does not need (the dialogue eval has no audio).
        """
        loaders = {"asr": self._load_asr, "llm": self._load_llm, "tts": self._load_tts, "kb": self._load_kb}
        try:
            await asyncio.gather(*(asyncio.to_thread(loaders[part]) for part in parts))
            await asyncio.to_thread(self._build_manager)
            self.ready = True
            log.info("models loaded; the hotline is ready")
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("loading the models failed")
            raise

    def _load_asr(self) -> None:
        self.models["asr"], self.models["vad"] = load_asr(self.settings)
        self.pools["asr"] = InferencePool("asr", self.settings.asr.workers)

    def _load_llm(self) -> None:
        from dialogue.llm import load_language_model

        s = self.settings.llm
        self.models["llm"] = load_language_model(
            s.model, cache_dir=self.settings.model_dir, n_threads=s.threads, n_ctx=s.context,
            base_url=s.base_url, api_key=s.api_key,
        )
        self.pools["llm"] = InferencePool("llm", s.workers)

    def _load_tts(self) -> None:
        from tts.loader import load_synthesizer

        s = self.settings.tts
        self.models["tts"] = load_synthesizer(s.backend, threads=s.threads)
        self.pools["tts"] = InferencePool("tts", s.workers)

    def _load_kb(self) -> None:
        from kb.embedder import E5Embedder
        from kb.index import HybridRetriever
        from kb.live import LiveIndex
        from kb.seed import DEMO_DIR, seed_demo_if_empty
        from kb.store import reembed_stale

        os.environ.setdefault("OMP_NUM_THREADS", "2")
        embedder = E5Embedder()
        folder = self.settings.kb_dir or DEMO_DIR
        with self.sessions() as session:
            if imported := seed_demo_if_empty(session, embedder=embedder, now=self.clock.now(), folder=folder):
                log.info("imported %d knowledge-base documents from %s", imported, folder)
            if reembedded := reembed_stale(session, embedder=embedder):
                log.info("embedded %d knowledge-base statements again with %s", reembedded, embedder.name)
        live = LiveIndex(HybridRetriever([], embedder), self.sessions)
        live.load()
        self.models["embedder"] = embedder
        self.models["kb_index"] = live
        self.models["retriever"] = live.retriever
        self.pools["kb"] = InferencePool("kb", 1)

    def _build_manager(self) -> None:
        from dialogue.answers import warm_up as warm_up_answers
        from dialogue.judge import IntentJudge
        from dialogue.manager import DialogueManager, DialogueOptions

        d = self.settings.dialogue
        judge = IntentJudge(self.models["llm"], self.pools["llm"])
        judge.warm_up()
        warm_up_answers()
        self.models["manager"] = DialogueManager(
            kb=self.models["retriever"], kb_pool=self.pools["kb"], judge=judge,
            options=DialogueOptions(carrier=d.carrier, hotline=d.hotline),
        )

    # ---- per call --------------------------------------------------------------------------------

    @property
    def manager(self) -> Any:
        return self.models["manager"]

    def new_recognizer(self, dialect: str) -> Any:
        from asr.stream import EndpointOptions, StreamingAsr

        return StreamingAsr(
            self.models["asr"], self.models["vad"].stream, self.pools["asr"], EndpointOptions(), dialect=dialect
        )

    async def speak(self, text: str, fmt: AudioFormat) -> AsyncIterator[bytes]:
        """Reply audio frames in the call's format; short fixed phrases are synthesized once."""
        from tts.stream import speak

        key = (text, fmt)
        if (frames := self._phrases.get(key)) is not None:
            self._phrases.move_to_end(key)
            for frame in frames:
                yield frame
            return
        produced: list[bytes] = []
        async for frame in speak(self.models["tts"], self.pools["tts"], text, fmt):
            produced.append(frame)
            yield frame
        if len(text) <= PHRASE_MAX_CHARS:
            self._phrases[key] = produced
            while len(self._phrases) > PHRASE_CACHE_SIZE:
                self._phrases.popitem(last=False)

    async def watch_kb(self) -> None:
        """Keep this process's search index level with the store (changes made by any gateway)."""
        while True:
            await asyncio.sleep(self.settings.kb_refresh_s)
            if (live := self.models.get("kb_index")) is not None:
                try:
                    await asyncio.to_thread(live.refresh)
                except Exception:  # a store that is briefly away: try again next time
                    log.exception("refreshing the knowledge-base index failed")

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.engine.dispose()
