"""The WebSocket call endpoint: one CallSession per caller, from `start` to `end`.

Three tasks per call, all owned by the session: the reader turns the line's messages into audio
chunks, the listener runs the recognizer over them, and the responder answers each final
transcript in turn, speaking it back paced at real time so that a barge-in stops it where
the caller actually stopped listening. The line is a `CallTransport` (gateway/transport.py): the
WebSocket here, another carrier (a SIP/RTP bridge) without changing the call.

Whoever holds the call produces its replies: the bot, or, once an escalated call is taken from the
live desk (gateway/live.py), an agent, whose typed lines come into the same inbox as the caller's
finals and are spoken the same way while the bot stays silent and only suggests answers to the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import math
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from core.audio import AudioChunk, AudioFormat, AudioFormatError, decode
from core.echo import echo_likeness
from core.events import FinalTranscript, PartialTranscript, SpeechLasting, SpeechStarted
from dialogue import prompts
from dialogue.base import ReplySentence
from dialogue.manager import CallState
from dialogue.safety import mask_pii
from gateway import events
from gateway.auth import call_refusal
from gateway.barge_in import CutInRules
from gateway.desk import StoreDesk
from gateway.logs import current_call
from gateway.protocol import (
    CLOSE_NORMAL,
    CLOSE_START_TIMEOUT,
    CLOSE_TRY_AGAIN,
    MAX_FRAME_BYTES,
    ProtocolError,
    StartMessage,
    parse_start,
)
from gateway.services import Services
from gateway.transport import CallTransport, LineGone, WebSocketTransport
from ticketing import CallAlreadyEnded, CallAlreadyExists, store
from tts.stream import SpokenClauses, text_prefix

log = logging.getLogger("hotline.calls")
router = APIRouter()

START_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 120.0
PLAYBACK_LEAD_S = 0.3  # audio sent ahead of real time, so playback never starves
MAX_PENDING_FINALS = 16  # utterances heard (and agent lines) not yet answered, before the recognizer waits
WATCH_INTERVAL_S = 1.0
SEND_TIMEOUT_S = 10.0  # replies are paced at real time, so a reading client never makes a send wait this long
ARRIVALS_KEPT = 6000  # audio frames whose arrival is remembered (two minutes of 20 ms frames)
ECHO_TAIL_S = 0.5  # after the bot's audio has played, its echo may still be coming back this long
ECHO_WINDOW_S = 0.5  # the caller's latest audio compared with what the bot sent
PLAYED_KEPT_FRAMES = 150  # the bot's latest frames (3 s of 20 ms): its echo comes back from within them
# the caller's latest audio chunks: the echo window of any client's frames, at the end of an utterance whose
# final transcript has taken a few seconds to come (an objection is judged then)
HEARD_KEPT_CHUNKS = 250


@router.websocket("/v1/calls")
async def call_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    await websocket.accept()
    if (refusal := call_refusal(websocket.headers, websocket.query_params, services.settings)) is not None:
        await _refuse(websocket, refusal, services)
        return
    try:
        start = await _receive_start(websocket)
        audio_format = start.audio_format()
        start.check_dialect()
        start.check_caller_id()
        if not services.ready:
            raise ProtocolError("not_ready", "the hotline is still loading its models; call again shortly", CLOSE_TRY_AGAIN)
        if services.active_calls >= services.settings.max_calls:
            raise ProtocolError("busy", "all lines are busy; call again shortly", CLOSE_TRY_AGAIN)
    except ProtocolError as exc:
        await _refuse(websocket, exc, services)
        return
    except WebSocketDisconnect:
        return
    session = CallSession(WebSocketTransport(websocket), services, start, audio_format)
    current_call.set(session.call_id)  # every log line of this call says so (its tasks inherit it)
    services.active_calls += 1
    try:
        await session.run()
    finally:
        services.active_calls -= 1


async def _receive_start(websocket: WebSocket) -> StartMessage:
    try:
        message = await asyncio.wait_for(websocket.receive(), START_TIMEOUT_S)
    except TimeoutError:
        raise ProtocolError("start_timeout", f"no start message within {START_TIMEOUT_S:.0f} s", CLOSE_START_TIMEOUT) from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return parse_start(message.get("text") if message.get("text") is not None else message.get("bytes"))


async def _refuse(websocket: WebSocket, exc: ProtocolError, services: Services) -> None:
    services.metrics.errors.labels(exc.code).inc()
    with contextlib.suppress(Exception):
        await websocket.send_text(events.Error(code=exc.code, message=exc.message).to_json())
        await websocket.close(code=exc.close_code, reason=exc.code)


@dataclass
class _Reply:
    turn: int
    spoken: list[str]
    interrupted: bool = False
    said_anything: bool = False
    speech_end: float | None = None  # when the caller's speech that this answers ended (monotonic clock)
    text_sent: bool = False
    audio_sent: bool = False
    said: list[str] = field(default_factory=list)  # every sentence begun, played to the end or not
    playing: _Playing | None = None  # the sentence whose audio is being sent
    played_until: float = 0.0  # when the audio sent so far will have been played (monotonic clock)
    ended: bool = False


@dataclass
class _Playing:
    """One sentence's audio on its way to the caller: what it says, and how much of it has been played."""

    text: str
    started: float  # when its first frame was sent (monotonic clock): the caller hears it from then on
    sent_samples: int = 0
    spoken: SpokenClauses = field(default_factory=SpokenClauses)

    def heard_text(self, now: float, sample_rate: int) -> str:
        """What the caller has heard of it by `now`: audio is sent ahead of real time and a client drops
        what it holds on `interrupted`, so only the time since the first frame counts, up to what was sent.
        The share of its audio played is mapped onto its characters clause by clause (tts.stream)."""
        played = min(self.sent_samples, max(0, round((now - self.started) * sample_rate)))
        return text_prefix(self.text, self.spoken.heard_share(played))


@dataclass
class _Overlap:
    """The caller's utterance heard while the bot speaks. It stops the bot once it has lasted, does not
    sound like the bot's own echo, and (with `barge_in_check_words`) says words that are neither a
    backchannel nor the bot's."""

    lasting: bool = False
    words: str = ""
    echo: bool = False  # the latest check found the caller's audio to be a copy of the bot's
    cut: bool = False


@dataclass(frozen=True)
class _Line:
    """Something to say that the bot's dialogue did not produce: an agent's words, or the desk's
    announcements (queue position, an agent joining); `end_call` ends the call once it is said."""

    text: str
    by: str  # "agent" | "desk"
    end_call: bool = False


@dataclass
class _Thinking:
    """The turn being worked out: what it answers and the call's state before it began."""

    final: FinalTranscript
    reply: _Reply
    task: asyncio.Task[None]
    state_before: CallState
    actions_before: int


class CallSession:
    def __init__(self, line: CallTransport, services: Services, start: StartMessage, fmt: AudioFormat) -> None:
        self.line = line
        self.services = services
        self.start = start
        self.format = fmt
        self.call_id = str(uuid.uuid4())
        self.state = CallState(call_id=self.call_id, caller_id=start.caller_id)
        self.limits = services.settings.calls
        # Bounded: a reader that gets ahead of the recognizer waits, and so stops reading the socket.
        self.audio: asyncio.Queue[AudioChunk | None] = asyncio.Queue(self.limits.audio_queue_frames)
        self.audio_closed = False
        self.inbox: asyncio.Queue[FinalTranscript | _Line | None] = asyncio.Queue(MAX_PENDING_FINALS)
        self.opened = services.clock.monotonic()
        self.last_audio = self.opened
        self.holding_audio = False  # the reader waits on purpose (pace, a full queue): the line is not idle
        self.warned_fast = False
        self.line_open = True
        self.end_reason = "caller_hangup"
        self.turns = 0
        self.reply: _Reply | None = None
        self.speaking: asyncio.Task[None] | None = None
        self.recent_replies: deque[_Reply] = deque(maxlen=2)  # what an echo of the bot may be saying
        self.overlap: _Overlap | None = None
        self.played: deque[bytes] = deque(maxlen=PLAYED_KEPT_FRAMES)
        self.heard: deque[tuple[float, np.ndarray]] = deque(maxlen=HEARD_KEPT_CHUNKS)  # (call audio s at its end, pcm)
        self.cut_in = CutInRules(self.limits.backchannels, self.limits.echo_share, self.limits.barge_in_objections)
        self.reader: asyncio.Task[None] | None = None
        # (seconds of call audio received, when they had arrived): maps a final's end of speech to a time
        self.audio_received_s = 0.0
        self.arrivals: deque[tuple[float, float]] = deque(maxlen=ARRIVALS_KEPT)
        self.speech_ends: dict[FinalTranscript, float] = {}
        self.thinking: _Thinking | None = None
        self.journal = services.journals.open(self.call_id)
        self.turn_seq = 0  # turns are numbered here, so a retried write cannot store one twice
        self.desk = StoreDesk(services.sessions, services.clock, self.state, dialect=start.dialect, notify=self.send,
                              journal=self.journal, gateway=services.settings.gateway_name,
                              on_escalated=self._wait_for_agent)
        self.agent: str | None = None  # the agent holding the call; None: the bot
        self.queued_escalation: int | None = None  # in the live queue, or held by an agent
        self.on_hold: asyncio.Task[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        self.journal.submit(
            store.start_call,
            already=CallAlreadyExists,
            call_id=self.call_id,
            caller_id=self.start.caller_id,
            codec=self.format.codec.value,
            sample_rate=self.format.sample_rate,
            dialect=self.start.dialect,
            now=self.services.clock.now(),
        )
        await self.send(events.Ready(call_id=self.call_id, codec=self.format.codec.value,
                                     sample_rate=self.format.sample_rate))
        self.reader = reader = asyncio.create_task(self._read(), name=f"read-{self.call_id}")
        listener = asyncio.create_task(self._listen(), name=f"listen-{self.call_id}")
        responder = asyncio.create_task(self._respond(), name=f"respond-{self.call_id}")
        watcher = asyncio.create_task(self._watch(reader), name=f"watch-{self.call_id}")
        tasks = [reader, listener, responder, watcher]
        if self.services.settings.dialogue.greeting:
            await self.inbox.put(_GREETING)
        try:
            await responder  # ends after the listener does, or when the bot ends the call
            if listener.done() and listener.exception() is not None:
                raise listener.exception()  # type: ignore[misc]
        except Exception:
            log.exception("call %s failed", self.call_id)
            self.end_reason = "error"
            await self.send(events.Error(code="internal", message="the call failed inside the hotline"))
        finally:
            for task in [*tasks, self.on_hold]:
                if task is not None:
                    task.cancel()
            await asyncio.gather(*(t for t in [*tasks, self.on_hold] if t is not None), return_exceptions=True)
            await self._finish()

    async def _finish(self) -> None:
        if self.queued_escalation is not None:
            try:
                await self.services.desk.leave(self.call_id, self.agent)
            except Exception:
                log.exception("call %s: could not take it off the live desk", self.call_id)
        try:
            await asyncio.wait_for(self.services.manager.hang_up(self.state, self.desk), DRAIN_TIMEOUT_S)
        except Exception:
            log.exception("call %s: could not file what the caller reported before hanging up", self.call_id)
        self.services.metrics.calls_ended.labels(self.end_reason).inc()
        outcome = "escalated" if self.state.escalation else self.end_reason
        self.journal.submit(store.end_call, already=CallAlreadyEnded, call_id=self.call_id, outcome=outcome,
                            now=self.services.clock.now())
        self.journal.close()
        await self.send(events.End(call_id=self.call_id, reason=self.end_reason))
        if self.line_open:
            self.line_open = False
            with contextlib.suppress(Exception):
                await self.line.close(CLOSE_NORMAL)

    async def send(self, event: events.ServerEvent) -> None:
        self._count(event)
        await self._send(event.to_json())

    def _count(self, event: events.ServerEvent) -> None:
        metrics = self.services.metrics
        if isinstance(event, events.Error):
            metrics.errors.labels(event.code).inc()
        elif isinstance(event, events.Ticket) and not (event.updated or event.was_pending or event.existing):
            metrics.tickets_opened.labels(event.category).inc()

    async def _send(self, message: str | bytes) -> None:
        if not self.line_open:
            return
        try:
            # A client that stops reading fills the socket's buffers and the send waits: give up on it.
            async with asyncio.timeout(SEND_TIMEOUT_S):
                if isinstance(message, bytes):
                    await self.line.send_audio(message)
                else:
                    await self.line.send_text(message)
        except TimeoutError:
            log.warning("call %s: the client has stopped reading; dropping the line", self.call_id)
            self._dropped()
        except LineGone:
            self._dropped()

    def _dropped(self) -> None:
        if self.line_open:
            self.line_open = False
            self.end_reason = "dropped"
            if self.reader is not None and self.reader is not asyncio.current_task():
                self.reader.cancel()  # whatever the client still sends is no longer heard

    def record_turn(self, speaker: str, text: str, **details: Any) -> None:
        self.turn_seq += 1
        self.journal.submit(store.add_turn, call_id=self.call_id, seq=self.turn_seq, speaker=speaker,
                            text=mask_pii(text), now=self.services.clock.now(), **details)

    # ---- watcher: a dead line and an endless call end by themselves -------------------------------

    async def _watch(self, reader: asyncio.Task[None]) -> None:
        clock = self.services.clock
        while not reader.done():
            now = clock.monotonic()
            if now - self.opened >= self.limits.max_duration_s:
                reason = "max_duration"
            elif self.holding_audio:
                self.last_audio = now
                reason = None
            elif now - self.last_audio >= self.limits.idle_timeout_s:
                reason = "idle"
            else:
                reason = None
            if reason is not None:
                log.info("ending call %s: %s", self.call_id, reason)
                self.end_reason = reason
                reader.cancel()  # the recognizer finishes what it has, the responder what it heard
                await self._barge_in(announce=False)
                return
            next_check = min(self.opened + self.limits.max_duration_s, self.last_audio + self.limits.idle_timeout_s)
            await asyncio.sleep(max(0.05, min(WATCH_INTERVAL_S, next_check - now)))

    # ---- reader: socket -> audio -----------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:  # cancelled by run() once the call is over
                message = await self.line.receive()
                if isinstance(message, bytes):
                    await self._on_audio(message)
                elif await self._on_text(message):
                    break
        except LineGone:
            self._dropped()
        finally:
            self.state.stop_model.set()  # nobody is listening: the model stops; queued turns go by the rules
            self._close_audio()

    def _close_audio(self) -> None:
        self.audio_closed = True
        with contextlib.suppress(asyncio.QueueFull):  # a full queue: the listener sees `audio_closed`
            self.audio.put_nowait(None)

    async def _on_audio(self, payload: bytes) -> None:
        if len(payload) > MAX_FRAME_BYTES:
            await self.send(events.Error(
                code="bad_audio", message=f"audio frame of {len(payload)} bytes is over {MAX_FRAME_BYTES}; frame dropped"))
            return
        try:
            pcm = decode(payload, self.format.codec)
        except AudioFormatError as exc:
            await self.send(events.Error(code="bad_audio", message=f"{exc}; frame dropped"))
            return
        self.last_audio = self.services.clock.monotonic()
        self.audio_received_s += len(pcm) / self.format.sample_rate
        self.heard.append((self.audio_received_s, pcm))
        self.arrivals.append((self.audio_received_s, self.last_audio))
        self.holding_audio = True
        try:
            await self._keep_pace()
            await self.audio.put(AudioChunk(pcm, self.format.sample_rate))
        finally:
            self.holding_audio = False
            self.last_audio = self.services.clock.monotonic()

    async def _keep_pace(self) -> None:
        """Audio far ahead of real time is read at real-time pace: the client's socket fills up and it
        has to wait (TCP back-pressure), and this process never holds more than a few seconds of it."""
        ahead = (self.audio_received_s - (self.services.clock.monotonic() - self.opened)
                 - self.limits.max_audio_lead_s)
        if ahead <= 0:
            return
        if not self.warned_fast:
            self.warned_fast = True
            await self.send(events.Error(
                code="audio_too_fast", message=f"audio is arriving faster than real time (over "
                f"{self.limits.max_audio_lead_s:g} s ahead); it is read at real-time pace"))
        await asyncio.sleep(ahead)

    async def _on_text(self, text: str) -> bool:
        """Handles a control message; True when the caller ends the call."""
        try:
            kind = json.loads(text).get("type")
        except (json.JSONDecodeError, AttributeError):
            kind = None
        if kind == "stop":
            self.end_reason = "caller_stop"
            return True
        await self.send(events.Error(
            code="bad_message", message=f"unknown control message {text[:80]!r}; expected {{\"type\": \"stop\"}}"))
        return False

    async def _audio_stream(self) -> AsyncIterator[AudioChunk]:
        while not (self.audio_closed and self.audio.empty()):
            if (chunk := await self.audio.get()) is None:
                return
            yield chunk

    # ---- listener: audio -> transcripts ----------------------------------------------------------

    async def _listen(self) -> None:
        recognizer = self.services.new_recognizer(self.start.dialect)
        try:
            async for event in recognizer.run(self._audio_stream()):
                if isinstance(event, SpeechStarted):
                    self.overlap = _Overlap() if self._bot_on_air() else None
                elif isinstance(event, SpeechLasting):
                    await self._on_lasting()
                elif isinstance(event, PartialTranscript):
                    await self.send(events.Partial(text=event.text, dialect=event.dialect))
                    await self._tell_agent(events.CallerPartial(call_id=self.call_id, text=event.text))
                    if self.overlap is not None:
                        self.overlap.words = event.text
                        await self._cut_in_if_meant()
                elif isinstance(event, FinalTranscript):
                    await self._on_final(event)
        finally:
            with contextlib.suppress(asyncio.QueueFull):  # full: the responder has already stopped
                self.inbox.put_nowait(None)

    def _arrival_of(self, audio_s: float) -> float | None:
        """When the call's audio up to `audio_s` seconds had arrived (None when no longer known)."""
        for received_s, at in self.arrivals:
            if received_s >= audio_s:
                return at
        return None

    async def _on_final(self, event: FinalTranscript) -> None:
        overlap, self.overlap = self.overlap, None
        objection = overlap is not None and not overlap.lasting and self._objects(event)
        if overlap is not None and objection:
            await self._cut_in(overlap)  # before anything else is sent: the caller wants silence now
        if (speech_end := self._arrival_of(event.ended_at)) is not None:
            self.services.metrics.latency("final", self.services.clock.monotonic() - speech_end)
        await self.send(events.Final(text=event.text, normalized=event.normalized or event.text,
                                     dialect=event.dialect, confidence=round(event.confidence, 3),
                                     start=round(event.started_at, 3), end=round(event.ended_at, 3)))
        self.record_turn("caller", event.text, dialect=event.dialect)
        # over the bot, a backchannel, a short sound or the bot's own echo is kept in the record, not answered;
        # an objection is answered however short it was
        a_turn = objection or overlap is None or (overlap.lasting and not overlap.echo
                                                  and self.cut_in.meant(event.text, self._bot_said()))
        if a_turn:
            poorly_heard = event.confidence < self.services.settings.dialogue.low_confidence
            self.state.poorly_heard = self.state.poorly_heard + 1 if poorly_heard else 0
        await self._tell_agent(events.CallerFinal(call_id=self.call_id, text=event.text,
                                                  normalized=event.normalized or event.text))
        if not a_turn:
            log.info("call %s: words said over the bot are not a turn (backchannel, too short, or its echo)",
                     self.call_id)
            return
        event = await self._supersede(event)
        if speech_end is not None:
            self.speech_ends[event] = speech_end
        await self._barge_in()  # a newer utterance supersedes whatever is still being said
        await self.inbox.put(event)

    async def _supersede(self, event: FinalTranscript) -> FinalTranscript:
        """A caller who speaks again before the bot has said or done anything about their last
        utterance ("我想问一下…" then "宽带安装费多少") is answered once, for both together."""
        thinking = self.thinking
        if (thinking is None or thinking.task.done() or thinking.final is _GREETING
                or thinking.reply.said_anything or self.desk.actions != thinking.actions_before):
            return event
        thinking.task.cancel()
        await asyncio.wait({thinking.task})
        self.state.restore(thinking.state_before)
        self.turns -= 1
        earlier = thinking.final
        return FinalTranscript(text=f"{earlier.text}，{event.text}", dialect=event.dialect,
                               confidence=min(earlier.confidence, event.confidence),
                               started_at=earlier.started_at, ended_at=event.ended_at,
                               normalized=f"{earlier.normalized or earlier.text}，{event.normalized or event.text}")

    # ---- barge-in: the caller talking over the bot ----------------------------------------------------

    def _bot_on_air(self) -> bool:
        """The bot's reply is playing, or its echo may still be coming back."""
        reply = self.reply
        if reply is None or not reply.text_sent or reply.interrupted:
            return False
        return not reply.ended or self.services.clock.monotonic() < reply.played_until + ECHO_TAIL_S

    def _objects(self, final: FinalTranscript) -> bool:
        """A short utterance over the bot asks it to stop: objection words, and neither the bot's words
        nor its audio coming back."""
        return (self.cut_in.objects(final.text, self._bot_said())
                and not self._sounds_like_the_bot(until_s=final.ended_at))

    def _bot_said(self) -> str:
        return "".join(sentence for reply in self.recent_replies for sentence in reply.said)

    async def _on_lasting(self) -> None:
        if self.overlap is None and self._bot_on_air():
            self.overlap = _Overlap()  # the bot began to speak while the caller was speaking
        if self.overlap is not None:
            self.overlap.lasting = True
            self.overlap.words = ""  # words decoded before it lasted judge too little of it; new ones follow
            await self._cut_in_if_meant()

    async def _cut_in_if_meant(self) -> None:
        overlap, reply = self.overlap, self.reply
        if overlap is None or overlap.cut or not overlap.lasting or reply is None or reply.ended:
            return
        overlap.echo = self._sounds_like_the_bot()
        if overlap.echo:
            return
        if self.limits.barge_in_check_words and not self.cut_in.meant(overlap.words, self._bot_said()):
            return
        await self._cut_in(overlap)

    async def _cut_in(self, overlap: _Overlap) -> None:
        """The caller's utterance stops the bot's reply, if it is still being said."""
        reply = self.reply
        if overlap.cut or reply is None or reply.ended:
            return
        overlap.cut = True
        if self.speaking is not None and not self.speaking.done():
            await self._barge_in()
        elif reply.text_sent and not reply.interrupted:  # between two sentences: the next is not said
            reply.interrupted = True
            await self.send(events.Interrupted(turn=reply.turn))

    def _sounds_like_the_bot(self, until_s: float | None = None) -> bool:
        """The caller's audio (the latest, or up to `until_s` seconds of the call's audio) is a copy of
        what the bot has just sent: its echo."""
        chunks = [pcm for end_s, pcm in self.heard if until_s is None or end_s - len(pcm) / self.format.sample_rate < until_s]
        if not chunks or not self.played:
            return False
        heard = np.concatenate(chunks)[-round(ECHO_WINDOW_S * self.format.sample_rate):]
        played = decode(b"".join(self.played), self.format.codec)
        return echo_likeness(heard, played) >= self.limits.echo_likeness

    async def _barge_in(self, announce: bool = True) -> None:
        if self.speaking is None or self.speaking.done() or self.reply is None:
            return
        self.reply.interrupted = True
        self.speaking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.speaking
        if announce:
            await self.send(events.Interrupted(turn=self.reply.turn))

    # ---- responder: transcripts -> replies -------------------------------------------------------

    async def _respond(self) -> None:
        while (final := await self.inbox.get()) is not None:
            if isinstance(final, _Line):
                await self._speak_line(final)
                if final.end_call:
                    self.end_reason = "agent_hangup"
                    break
                continue
            if self.agent is not None:  # the agent answers; the bot only suggests
                await self._assist(final)
                continue
            state_before, actions_before = copy.deepcopy(self.state), self.desk.actions
            reply = self._next_reply()
            task = asyncio.create_task(self._answer(final, reply), name=f"answer-{self.call_id}")
            self.thinking = _Thinking(final, reply, task, state_before, actions_before)
            try:
                await asyncio.wait({task})
            finally:
                task.cancel()
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            if self.state.ended:
                self.end_reason = "bot_end"
                break
        # the caller hung up: answer what is still queued so tickets are not lost, without audio
        while not self.inbox.empty():
            final = self.inbox.get_nowait()
            if isinstance(final, FinalTranscript) and self.agent is None:
                await asyncio.wait_for(self._answer(final, self._next_reply()), DRAIN_TIMEOUT_S)

    def _next_reply(self) -> _Reply:
        self.turns += 1
        return _Reply(self.turns, [])

    async def _answer(self, final: FinalTranscript, reply: _Reply) -> None:
        self._begin_reply(reply)
        reply.speech_end = self.speech_ends.pop(final, None)
        sentences: AsyncGenerator[ReplySentence, None]
        if final is _GREETING:
            sentences = _single(self.services.manager.greeting())
        else:
            sentences = self.services.manager.turn(self.state, final.normalized or final.text, self.desk)
        try:
            async for sentence in sentences:
                if reply.interrupted:
                    break
                reply.said_anything = True
                await self._say(reply, sentence.text, sentence.citations)
        except Exception:
            log.exception("turn %d of call %s failed", reply.turn, self.call_id)
            await self.send(events.Error(code="turn_failed",
                                         message="this turn could not be answered; the caller is offered a human"))
            await self._say(reply, prompts.trouble())
        finally:
            await sentences.aclose()
        await self._end_reply(reply, "bot")

    async def _end_reply(self, reply: _Reply, speaker: str) -> str:
        """The reply is over: the history and the call record keep what the caller heard of it."""
        reply.ended = True
        heard = "".join(reply.spoken)
        self.state.remember_reply(heard)
        await self.send(events.ReplyEnd(turn=reply.turn, text=heard, interrupted=reply.interrupted))
        if heard:
            self.record_turn(speaker, heard, interrupted=reply.interrupted)
        return heard

    async def _say(self, reply: _Reply, text: str, citations: tuple[str, ...] = (), by: str = "bot") -> None:
        await self.send(events.Reply(turn=reply.turn, text=text, citations=citations, by=by))
        reply.said.append(text)
        if not reply.text_sent:
            reply.text_sent = True
            self._measure(reply, "reply_text")
        if self.line_open and not self.audio_closed:  # after a hang-up the turn still runs (tickets), silently
            self.speaking = asyncio.create_task(self._speak(text, reply))
            with contextlib.suppress(asyncio.CancelledError):
                await self.speaking
        if not reply.interrupted:
            reply.spoken.append(text)
        elif reply.playing is not None and reply.playing.text == text:  # cut while it played: keep what was heard
            if heard := reply.playing.heard_text(self.services.clock.monotonic(), self.format.sample_rate):
                reply.spoken.append(heard)
        reply.playing = None

    async def _speak(self, text: str, reply: _Reply) -> None:
        clock = self.services.clock
        started = clock.monotonic()
        sent = 0.0
        playing = _Playing(text, started)
        async for frame in self.services.speak(text, self.format, playing.spoken):
            ahead = started + sent - clock.monotonic() - PLAYBACK_LEAD_S
            if ahead > 0:
                await asyncio.sleep(ahead)
            await self._send(frame)
            self.played.append(frame)
            if reply.playing is not playing:  # from its first frame on, the caller hears this sentence
                playing.started = clock.monotonic()
                reply.playing = playing
            playing.sent_samples += len(frame) // self.format.bytes_per_sample
            sent += len(frame) / (self.format.bytes_per_sample * self.format.sample_rate)
            reply.played_until = started + sent
            if not reply.audio_sent:
                reply.audio_sent = True
                self._measure(reply, "reply_audio")
            if not self.line_open:
                return

    # ---- the live desk: waiting for an agent, and the agent's turns --------------------------------

    async def _wait_for_agent(self, escalation_id: int) -> None:
        """The escalation is in the store: the call joins the live queue and, once the bot's reply is
        said, the caller hears their place in it. (One kept in the journal while the store is away is
        not queued: an agent calls back.)"""
        self.queued_escalation = escalation_id
        ahead = await self.services.desk.enqueue(self.call_id, escalation_id, self)
        await self.inbox.put(_Line(prompts.queue_position(ahead, self._expected_minutes(ahead)), "desk"))
        self.on_hold = asyncio.create_task(self._hold(), name=f"hold-{self.call_id}")

    def _expected_minutes(self, ahead: int) -> int:
        return max(1, math.ceil((ahead + 1) * self.services.settings.desk.wait_per_call_s / 60))

    async def _hold(self) -> None:
        """A waiting caller is never left in silence: every so often they hear that they still wait."""
        interval = self.services.settings.desk.hold_interval_s
        while True:
            await asyncio.sleep(interval)
            quiet = self.inbox.empty() and (self.speaking is None or self.speaking.done())
            if self.agent is None and quiet and self.queued_escalation is not None:
                ahead = await self.services.desk.position(self.queued_escalation)
                await self.inbox.put(_Line(prompts.still_waiting(ahead), "desk"))

    def _stop_hold(self) -> None:
        if self.on_hold is not None:
            self.on_hold.cancel()
            self.on_hold = None

    async def _speak_line(self, line: _Line) -> None:
        reply = self._next_reply()
        self._begin_reply(reply)
        await self._say(reply, line.text, by=line.by)
        speaker = "agent" if line.by == "agent" else "bot"
        heard = await self._end_reply(reply, speaker)
        await self._tell_agent(events.Spoken(call_id=self.call_id, text=heard or line.text, by=speaker,
                                             interrupted=reply.interrupted))

    async def _assist(self, final: FinalTranscript) -> None:
        text = final.normalized or final.text
        self.state.remember_caller(text)
        try:
            suggestion = await self.services.manager.suggest(self.state, text)
        except Exception:
            log.exception("call %s: no suggestion for the agent", self.call_id)
            return
        await self._tell_agent(events.Assist(
            call_id=self.call_id, question=text, suggestion=suggestion.text, citations=suggestion.citations,
            passages=tuple({"doc_id": p.doc_id, "title": p.title, "text": p.text, "score": round(p.score, 3)}
                           for p in suggestion.passages),
        ))

    async def _tell_agent(self, event: events.ServerEvent) -> None:
        if self.agent is not None:
            await self.services.desk.tell_agent(self.agent, event)

    # HeldCall: what the live desk does to this call

    async def agent_joined(self, agent: str) -> None:
        self.agent = agent
        self._stop_hold()
        await self.send(events.Agent(state="joined"))
        await self._barge_in(announce=False)  # a hold announcement gives way to the agent
        await self.inbox.put(_Line(prompts.agent_joined(), "desk"))

    async def agent_says(self, text: str) -> None:
        await self.inbox.put(_Line(text, "agent"))

    async def agent_left(self) -> None:
        self.agent = None
        await self.send(events.Agent(state="left"))
        await self.inbox.put(_Line(prompts.agent_left(), "desk"))
        self.on_hold = asyncio.create_task(self._hold(), name=f"hold-{self.call_id}")

    async def handed_back(self) -> None:
        self.agent = None
        self.queued_escalation = None
        self.state.escalation = None  # the bot answers again, with the whole call behind it
        self._stop_hold()
        await self.send(events.Agent(state="handed_back"))
        await self.inbox.put(_Line(prompts.handed_back(), "desk"))

    async def agent_hung_up(self) -> None:
        self.queued_escalation = None
        await self.inbox.put(_Line(prompts.goodbye(), "desk", end_call=True))

    def _begin_reply(self, reply: _Reply) -> None:
        self.reply = reply
        self.recent_replies.append(reply)

    def _measure(self, reply: _Reply, stage: str) -> None:
        if reply.speech_end is not None:
            self.services.metrics.latency(stage, self.services.clock.monotonic() - reply.speech_end)


_GREETING = FinalTranscript(text="", dialect="", confidence=1.0, started_at=0.0, ended_at=0.0)


async def _single(text: str) -> AsyncGenerator[ReplySentence, None]:
    yield ReplySentence(text)
