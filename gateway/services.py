"""What one hotline process holds: the store, the models (loaded once), the dialogue manager."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.audio import AudioFormat
from core.bundled import resolve
from core.clock import Clock, SystemClock
from core.concurrency import InferencePool
from gateway import accounts, db, preload
from gateway.bus import open_bus
from gateway.journal import Journals
from gateway.live import LiveDesk
from gateway.metrics import Metrics
from gateway.settings import Settings
from ticketing import store

if TYPE_CHECKING:
    from tts.stream import SpokenClauses

log = logging.getLogger("hotline.services")

MODEL_PARTS = ("asr", "llm", "tts", "kb")
PHRASE_CACHE_SIZE = 256
PHRASE_MAX_CHARS = 40


def load_asr(settings: Settings) -> tuple[Any, Any]:
    """The recognizer's shared models: (WhisperTranscriber, SileroVadModel)."""
    from asr.dialects import use_registry_file
    from asr.vad import SileroVadModel
    from asr.whisper import WhisperTranscriber

    s = settings.asr
    use_registry_file(s.dialects_file)
    path = resolve(s.model, settings.model_dir)
    transcriber = WhisperTranscriber(
        path, device=s.device, compute_type=s.compute_type, cpu_threads=s.threads, beam_size=s.beam_size,
        hotwords=s.hotwords,
    )
    for dialect, model in transcriber.load_dialect_models().items():
        log.info("dialect %s is served by its own model %s", dialect, model)
    return transcriber, SileroVadModel()


def dialect_identifier(settings: Settings, transcriber: Any, classifier: Any) -> Any:
    """asr.lid.AutoDialect with `classifier` and the thresholds of the settings."""
    from asr.lid import AutoDialect

    s = settings.asr
    return AutoDialect(classifier, transcriber.whisper_model, mandarin_confidence=s.lid_mandarin_confidence,
                       min_probability=s.lid_min_probability)


def load_dialect_identifier(settings: Settings, transcriber: Any) -> Any:
    """The `auto` calls' dialect identifier, or None when no classifier is set."""
    from asr.dialects import registry
    from asr.lid import DialectClassifier

    path = settings.asr.lid_file
    if path is None:
        return None
    classifier = DialectClassifier.load(path)
    unknown = [name for name in classifier.classes if registry().get(name) is None]
    if unknown:
        raise ValueError(f"the classifier {path} names dialects the registry does not know: {unknown}")
    return dialect_identifier(settings, transcriber, classifier)


def endpoint_options(settings: Settings) -> Any:
    from asr.stream import EndpointOptions

    s = settings.asr
    return EndpointOptions(endpoint_silence_s=s.endpoint_silence_s, hold_silence_s=s.hold_silence_s,
                           speculate_after_s=s.speculate_after_s, partial_interval_s=s.partial_interval_s)


class ModelsFailed(RuntimeError):
    """One or more models could not be loaded (which and why: `Services.model_states`)."""


@dataclass
class ModelState:
    state: str = "waiting"  # waiting -> importing -> imported -> loading -> ready | failed
    error: str | None = None
    seconds: float | None = None  # how long loading took


@dataclass
class Services:
    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    ready: bool = False
    model_states: dict[str, ModelState] = field(default_factory=dict)
    unplanned_imports: list[str] = field(default_factory=list)
    active_calls: int = 0
    models: dict[str, Any] = field(default_factory=dict)
    pools: dict[str, InferencePool] = field(default_factory=dict)
    dialect_identifier: Any = None  # asr.lid.AutoDialect when HOTLINE_ASR__LID_FILE is set
    _phrases: OrderedDict[tuple[str, AudioFormat], tuple[list[bytes], SpokenClauses]] = field(
        default_factory=OrderedDict)
    metrics: Metrics = field(init=False)
    journals: Journals = field(init=False)  # each call's writes, kept and retried while the store is away
    desk: LiveDesk = field(init=False)  # escalated calls and the agents who take them

    def __post_init__(self) -> None:
        self.journals = Journals(self.sessions)
        self.desk = LiveDesk(open_bus(self.settings.redis_url), self.sessions, self.clock, self.settings.gateway_name)
        self.metrics = Metrics(
            active_calls=lambda: self.active_calls,
            pools=lambda: self.pools,
            model_states=lambda: {part: state.state for part, state in self.model_states.items()},
            waiting_escalations=self._waiting_escalations,
        )

    def _waiting_escalations(self) -> int:
        with self.sessions() as session:
            return store.count_escalations(session, status="waiting")

    def _pool(self, model: str, workers: int) -> InferencePool:
        return InferencePool(model, workers, on_wait=self.metrics.wait_observer(model))

    @classmethod
    def open(cls, settings: Settings, clock: Clock | None = None) -> Services:
        """Opens and migrates the store; models come later, with `load_models`."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        engine = db.create_engine_for(url)
        db.migrate_engine(engine)
        sessions = db.session_factory(engine, info={"sla": settings.sla.policy()})  # see store._sla_of
        services = cls(settings, clock or SystemClock(), engine, sessions)
        services._set_admin_token()
        return services

    def _set_admin_token(self) -> None:
        given = self.settings.admin_token
        with self.sessions() as session:
            made = accounts.set_admin_token(session, token=given.get_secret_value() if given else None,
                                            now=self.clock.now())
        if made is not None:
            log.warning("first start: the admin token is %s  (shown only this once; the hotline keeps only "
                        "its hash; `hotline token admin` makes a new one)", made)

    # ---- loading ---------------------------------------------------------------------------------

    async def load_models(self, parts: tuple[str, ...] = MODEL_PARTS) -> None:
        """Loads the models off the event loop, seeds the demo KB into an empty store, then is ready.

        Their modules are imported first, on one thread (see gateway/preload.py); then the models
        load side by side. A part that fails is reported in `model_states` (and so by /readyz) while
        the others go on loading; `ModelsFailed` is raised at the end. `parts` leaves out what a
        command does not need (the dialogue eval has no audio).
        """
        self.model_states = {part: ModelState() for part in parts}
        builds_manager = {"llm", "kb"} <= set(parts)
        if builds_manager:
            self.model_states["dialogue"] = ModelState()
        await asyncio.to_thread(self._import_modules, parts)
        before = preload.loaded_modules()
        loaders = {"asr": self._load_asr, "llm": self._load_llm, "tts": self._load_tts, "kb": self._load_kb}
        importable = [part for part in parts if self.model_states[part].state != "failed"]
        await asyncio.gather(*(asyncio.to_thread(self._load_part, part, loaders[part]) for part in importable))
        self.unplanned_imports = sorted(preload.loaded_modules() - before)
        if self.unplanned_imports:
            log.warning("modules imported while the models loaded side by side (add them to gateway/preload.py): %s",
                        ", ".join(self.unplanned_imports))
        if builds_manager:
            if self.model_states["llm"].state == "ready" and self.model_states["kb"].state == "ready":
                await asyncio.to_thread(self._load_part, "dialogue", self._build_manager)
            else:
                self.model_states["dialogue"] = ModelState("failed", "needs the llm and kb models")
        if self.load_error is not None:
            log.error("the hotline is not ready: %s", self.load_error)
            raise ModelsFailed(self.load_error)
        self.ready = True
        log.info("models loaded; the hotline is ready")

    @property
    def load_error(self) -> str | None:
        """Which models failed and why, or None."""
        failed = [f"{part}: {state.error}" for part, state in self.model_states.items() if state.state == "failed"]
        return "; ".join(failed) or None

    def _import_modules(self, parts: tuple[str, ...]) -> None:
        for part in parts:
            state = self.model_states[part]
            state.state = "importing"
            try:
                preload.import_part(part, self.settings)
            except Exception as exc:
                log.exception("importing the modules of %s failed", part)
                state.state, state.error = "failed", f"could not import its modules: {type(exc).__name__}: {exc}"
            else:
                state.state = "imported"

    def _load_part(self, part: str, load: Callable[[], None]) -> None:
        state = self.model_states[part]
        state.state = "loading"
        started = self.clock.monotonic()
        try:
            load()
        except Exception as exc:
            log.exception("loading %s failed", part)
            state.state, state.error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            state.state = "ready"
        state.seconds = round(self.clock.monotonic() - started, 2)

    def _load_asr(self) -> None:
        self.models["asr"], self.models["vad"] = load_asr(self.settings)
        self.dialect_identifier = load_dialect_identifier(self.settings, self.models["asr"])
        self.pools["asr"] = self._pool("asr", self.settings.asr.workers)

    def _load_llm(self) -> None:
        from dialogue.llm import load_language_model

        s = self.settings.llm
        self.models["llm"] = load_language_model(
            s.model, cache_dir=self.settings.model_dir, n_threads=s.threads, n_ctx=s.context,
            base_url=s.base_url, api_key=s.api_key,
        )
        self.pools["llm"] = self._pool("llm", s.workers)

    def _load_tts(self) -> None:
        from tts.loader import load_synthesizer

        s = self.settings.tts
        self.models["tts"] = load_synthesizer(s.backend, threads=s.threads, coqui=s.coqui_voice())
        self.pools["tts"] = self._pool("tts", s.workers)

    def _load_kb(self) -> None:
        from gateway.kb_admin import KbAdmin, LazyEmbedder, limits_from
        from kb.embedder import E5Embedder
        from kb.index import HybridRetriever
        from kb.live import LiveIndex
        from kb.seed import DEMO_DIR, seed_demo_if_empty
        from kb.store import reembed_stale

        os.environ.setdefault("OMP_NUM_THREADS", "2")
        embedder = E5Embedder(num_threads=self.settings.kb_threads)
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
        self.models["kb_admin"] = KbAdmin(
            self.sessions, self.clock, embedder, LazyEmbedder(E5Embedder), live, limits_from(self.settings),
            self.settings.kb_import_dir,
        )
        self.pools["kb"] = self._pool("kb", 1)

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
        from asr.stream import StreamingAsr

        # a call's recognizer says when the caller has spoken long enough to be cutting in
        options = replace(endpoint_options(self.settings), lasting_s=self.settings.calls.barge_in_min_speech_s)
        return StreamingAsr(self.models["asr"], self.models["vad"].stream, self.pools["asr"], options, dialect=dialect,
                            identify=self.dialect_identifier)

    async def speak(self, text: str, fmt: AudioFormat, spoken: SpokenClauses | None = None) -> AsyncIterator[bytes]:
        """Reply audio frames in the call's format; short fixed phrases are synthesized once. `spoken` is
        filled in with how the audio lines up with the text (tts.stream.SpokenClauses)."""
        from tts.stream import SpokenClauses, speak

        spoken = spoken if spoken is not None else SpokenClauses()
        key = (text, fmt)
        if (cached := self._phrases.get(key)) is not None:
            self._phrases.move_to_end(key)
            frames, lined_up = cached
            spoken.total_chars, spoken.clauses[:] = lined_up.total_chars, lined_up.clauses
            for frame in frames:
                yield frame
            return
        produced: list[bytes] = []
        async for frame in speak(self.models["tts"], self.pools["tts"], text, fmt, spoken=spoken):
            produced.append(frame)
            yield frame
        if len(text) <= PHRASE_MAX_CHARS:
            self._phrases[key] = (produced, copy.deepcopy(spoken))
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
