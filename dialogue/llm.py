"""Language-model clients: a GGUF run in-process by llama.cpp (xllamacpp), or any OpenAI-compatible server.

Both speak the chat-completions format, so the model's own chat template (ChatML for Qwen2.5) is applied
by the engine, and both stream text pieces as they are decoded. When the consumer stops iterating
(barge-in), the generation is cancelled at the next decoded token instead of running to `max_tokens`.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import secrets
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from core.bundled import BUNDLED_PREFIX, ModelUnavailable, resolve
from dialogue.base import ChatMessage, GenerationOptions, LanguageModel

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
_ROLES = frozenset({"system", "user", "assistant"})
# llama.cpp's error type for a prompt longer than the context window (in-process and over HTTP)
_CONTEXT_ERROR_TYPE = "exceed_context_size_error"


class ModelLoadError(ModelUnavailable):
    """A model file could not be loaded: missing, not a GGUF, truncated or unsupported."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot load language model {path}: {reason}")
        self.path = path
        self.reason = reason


class GenerationError(RuntimeError):
    """A chat-completion request failed; the message says why."""


class ContextTooLongError(GenerationError):
    """The prompt does not fit the model's context window (trim the history or the passages)."""


class ServerError(GenerationError):
    """An OpenAI-compatible server answered with an HTTP error."""

    def __init__(self, url: str, status_code: int, detail: str) -> None:
        super().__init__(f"{url} answered HTTP {status_code}: {detail}")
        self.url = url
        self.status_code = status_code
        self.detail = detail


class ServerUnreachableError(GenerationError):
    """An OpenAI-compatible server could not be reached or did not answer in time."""


@dataclass(frozen=True)
class GenerationTimings:
    """What the engine reports for one request (llama.cpp servers only)."""

    prompt_tokens: int  # prompt tokens evaluated for this request
    cached_tokens: int  # prompt tokens reused from the prefix cache, not evaluated again
    prompt_ms: float
    generated_tokens: int
    generation_ms: float

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.prompt_tokens / self.prompt_ms * 1000 if self.prompt_ms > 0 else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        return self.generated_tokens / self.generation_ms * 1000 if self.generation_ms > 0 else 0.0


@dataclass(frozen=True)
class EngineCounters:
    """Running totals of an in-process llama.cpp engine since it was loaded."""

    prompt_tokens: int
    cached_prompt_tokens: int
    generated_tokens: int
    requests_processing: int


TimingsCallback = Callable[[GenerationTimings], None]


def chat_request_body(messages: Sequence[ChatMessage], options: GenerationOptions) -> dict[str, Any]:
    """The streaming chat-completions request for `messages`; rejects what no server would accept."""
    if not messages:
        raise ValueError("a chat request needs at least one message")
    for message in messages:
        if message.role not in _ROLES:
            raise ValueError(f"unknown chat role {message.role!r}; expected one of {sorted(_ROLES)}")
    if options.max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {options.max_tokens}")
    if options.temperature < 0:
        raise ValueError(f"temperature must not be negative, got {options.temperature}")
    body: dict[str, Any] = {
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "max_tokens": options.max_tokens,
        "temperature": options.temperature,
        "stream": True,
    }
    if options.stop:
        body["stop"] = list(options.stop)
    if options.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": dict(options.json_schema), "strict": True},
        }
    return body


def _delta_text(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    delta = choices[0].get("delta") or {}
    return delta.get("content") or ""


def _timings(chunk: dict[str, Any]) -> GenerationTimings | None:
    raw = chunk.get("timings")
    if not isinstance(raw, dict):
        return None
    return GenerationTimings(
        prompt_tokens=int(raw.get("prompt_n", 0)),
        cached_tokens=int(raw.get("cache_n", 0)),
        prompt_ms=float(raw.get("prompt_ms", 0.0)),
        generated_tokens=int(raw.get("predicted_n", 0)),
        generation_ms=float(raw.get("predicted_ms", 0.0)),
    )


def _error_from_payload(error: object, where: str) -> GenerationError:
    if isinstance(error, dict):
        message = str(error.get("message") or error)
        if error.get("type") == _CONTEXT_ERROR_TYPE:
            return ContextTooLongError(f"{where}: {message}")
        return GenerationError(f"{where}: {message}")
    return GenerationError(f"{where}: {error}")


# ---------------------------------------------------------------------------------------------------------
# In-process llama.cpp


def check_gguf_file(path: Path) -> None:
    """Raise ModelLoadError unless `path` is a readable file that starts like a GGUF."""
    if not path.exists():
        raise ModelLoadError(path, "the file does not exist")
    if not path.is_file():
        raise ModelLoadError(path, "it is not a file (expected a .gguf model file)")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise ModelLoadError(path, f"it cannot be read ({exc.strerror or exc})") from exc
    if head != GGUF_MAGIC:
        raise ModelLoadError(path, f"it is not a GGUF file (starts with {head!r}, expected {GGUF_MAGIC!r})")


def prefer_sleeping_openmp_waits() -> None:
    """Make llama.cpp's CPU threads sleep, not spin, while they wait for each other.

    The threads meet at an OpenMP barrier after every operation and by default spin there. When other
    processes share the cores, a spinning thread burns the time slice its descheduled partner needs:
    here decoding with 2 threads fell from ~20 to ~1.5 tokens/s (0.5B model, load average 6 on 2 cores).
    libgomp reads OMP_WAIT_POLICY once, when it is loaded, so this must run before xllamacpp is
    first imported; an explicit OMP_WAIT_POLICY in the environment is left alone.
    """
    if "OMP_WAIT_POLICY" not in os.environ and "xllamacpp" in sys.modules:
        log.warning("xllamacpp was imported before OMP_WAIT_POLICY was set; llama.cpp threads will spin")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class _End:
    """Marks the end of one request's chunks on the relay queue."""


_END = _End()


class _ChunkRelay:
    """Carries one request's text pieces from llama.cpp's callback to the consuming generator."""

    def __init__(self, on_timings: TimingsCallback | None) -> None:
        self.items: queue.SimpleQueue[str | GenerationError | _End] = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self._on_timings = on_timings

    def on_chunk(self, chunk: dict[str, Any]) -> bool:
        """Called by llama.cpp for every streamed chunk; returning True stops the generation."""
        if self.cancelled.is_set():
            return True
        if "error" in chunk:
            self.items.put(_error_from_payload(chunk["error"], "llama.cpp"))
            return True
        if text := _delta_text(chunk):
            self.items.put(text)
        if self._on_timings is not None and (timings := _timings(chunk)) is not None:
            self._on_timings(timings)
        return False


def _run_request(server: Any, body: dict[str, Any], relay: _ChunkRelay) -> None:
    try:
        server.handle_chat_completions(body, relay.on_chunk)
    except Exception as exc:  # handed to the consumer, which raises it
        relay.items.put(GenerationError(f"llama.cpp rejected the request: {exc}"))
    finally:
        relay.items.put(_END)


def _counter(metrics: str, name: str) -> int:
    match = re.search(rf"^llamacpp:{name} (\S+)$", metrics, flags=re.MULTILINE)
    return int(float(match.group(1))) if match else 0


class LlamaCppModel:
    """A GGUF chat model run in this process by llama.cpp's server engine (xllamacpp).

    Safe to call from several threads: the engine queues requests and runs `n_parallel` of them at a
    time (the slots share the `n_ctx`-token KV cache). Each slot keeps the KV cache of its
    last prompt, so a request that starts with the same system prompt only evaluates what follows it.
    The engine also listens on a random loopback port (unavoidable in xllamacpp); that port is
    locked with a random API key nobody is told.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int = 2,
        name: str | None = None,
        n_parallel: int = 1,
        verbose: bool = False,
    ) -> None:
        if n_ctx < 64:
            raise ValueError(f"n_ctx must be at least 64 tokens, got {n_ctx}")
        if n_threads < 1:
            raise ValueError(f"n_threads must be at least 1, got {n_threads}")
        if n_parallel < 1:
            raise ValueError(f"n_parallel must be at least 1, got {n_parallel}")
        check_gguf_file(model_path)
        self.path = model_path
        self.name = name or model_path.stem
        self.n_ctx = n_ctx
        self._server = self._start_engine(model_path, n_ctx, n_threads, n_parallel, verbose)

    @staticmethod
    def _start_engine(path: Path, n_ctx: int, n_threads: int, n_parallel: int, verbose: bool) -> Any:
        prefer_sleeping_openmp_waits()
        import xllamacpp  # imported here so that the HTTP client works without the native wheel

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx
        params.n_parallel = n_parallel
        params.cpuparams.n_threads = n_threads
        params.cpuparams_batch.n_threads = n_threads
        params.n_threads_http = 1
        params.cache_prompt = True
        params.cache_ram_mib = 512  # host-RAM copies of evicted slot prompts, bounded
        params.endpoint_metrics = True
        params.api_keys = [secrets.token_urlsafe(24)]
        params.verbosity = 3 if verbose else -1
        try:
            return xllamacpp.Server(params)
        except RuntimeError as exc:
            raise ModelLoadError(
                path, f"llama.cpp could not load it (truncated, corrupt or unsupported GGUF): {exc}"
            ) from exc

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_timings: TimingsCallback | None = None,
    ) -> Iterator[str]:
        """Yield the reply's text pieces as they are decoded; closing the iterator cancels decoding."""
        body = chat_request_body(messages, options)
        body["cache_prompt"] = True
        server = self._server
        if server is None:
            raise GenerationError(f"language model {self.name} is closed")
        relay = _ChunkRelay(on_timings)
        worker = threading.Thread(
            target=_run_request, args=(server, body, relay), name=f"llm-{self.name}", daemon=True
        )
        worker.start()
        try:
            while not isinstance(item := relay.items.get(), _End):
                if isinstance(item, GenerationError):
                    raise item
                yield item
        finally:
            relay.cancelled.set()

    def counters(self) -> EngineCounters:
        """Totals since load (prompt tokens evaluated and reused, tokens generated, busy requests)."""
        if self._server is None:
            raise GenerationError(f"language model {self.name} is closed")
        metrics = self._server.handle_metrics()
        return EngineCounters(
            prompt_tokens=_counter(metrics, "prompt_tokens_total"),
            cached_prompt_tokens=_counter(metrics, "prompt_tokens_cached_total"),
            generated_tokens=_counter(metrics, "tokens_predicted_total"),
            requests_processing=_counter(metrics, "requests_processing"),
        )

    def close(self) -> None:
        """Release the engine once the requests still running have finished."""
        self._server = None


# ---------------------------------------------------------------------------------------------------------
# OpenAI-compatible HTTP server


def chat_completions_url(base_url: str) -> str:
    """`http://host:8000` and `http://host:8000/v1` both mean `http://host:8000/v1/chat/completions`."""
    url = httpx.URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}"
        )
    path = url.path.rstrip("/")
    if path == "":
        path = "/v1"
    return str(url.copy_with(path=f"{path}/chat/completions"))


def _http_error_detail(response: httpx.Response) -> str:
    text = response.text
    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()[:500] or response.reason_phrase
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("message", "detail", "error"):
            if payload.get(key):
                return str(payload[key])
    return text.strip()[:500]


def _sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) pairs of a server-sent-events stream; comments (keep-alive pings) dropped."""
    event = "message"
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "error":  # older llama.cpp servers send `error: {...}` lines
            yield "error", value
    if data:
        yield event, "\n".join(data)


class OpenAICompatibleModel:
    """Streams chat completions from an OpenAI-compatible server (vLLM, llama.cpp server, ...)."""

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 30.0
    ) -> None:
        if not model:
            raise ValueError("model (the served model's name) must not be empty")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.url = chat_completions_url(base_url)
        self.name = model
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout))

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_timings: TimingsCallback | None = None,
    ) -> Iterator[str]:
        """Yield the reply's text pieces as they arrive; closing the iterator closes the connection,
        which makes the server stop decoding."""
        body = chat_request_body(messages, options)
        body["model"] = self.name
        try:
            with self._client.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise self._http_error(response)
                yield from self._pieces(response, on_timings)
        except httpx.TimeoutException as exc:
            raise ServerUnreachableError(f"{self.url} did not answer in time: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"connection to {self.url} failed: {exc!r}") from exc

    def _http_error(self, response: httpx.Response) -> GenerationError:
        detail = _http_error_detail(response)
        if response.status_code in (401, 403):
            detail += " (check the API key)"
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict) and error.get("type") == _CONTEXT_ERROR_TYPE:
            return ContextTooLongError(f"{self.url}: {detail}")
        return ServerError(self.url, response.status_code, detail)

    def _pieces(self, response: httpx.Response, on_timings: TimingsCallback | None) -> Iterator[str]:
        for event, data in _sse_events(response.iter_lines()):
            if data.strip() == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError as exc:
                raise GenerationError(f"{self.url} sent a malformed stream event: {data[:200]!r}") from exc
            if event == "error" or (isinstance(chunk, dict) and "error" in chunk):
                payload = chunk.get("error", chunk) if isinstance(chunk, dict) else chunk
                raise _error_from_payload(payload, self.url)
            if not isinstance(chunk, dict):
                continue
            if text := _delta_text(chunk):
                yield text
            if on_timings is not None and (timings := _timings(chunk)) is not None:
                on_timings(timings)

    def close(self) -> None:
        self._client.close()


# ---------------------------------------------------------------------------------------------------------


def load_language_model(
    spec: str,
    *,
    cache_dir: Path,
    n_threads: int,
    n_ctx: int,
    base_url: str | None,
    api_key: str | None,
) -> LanguageModel:
    """The model a setting names: with `base_url`, the served model `spec` of that OpenAI-compatible
    server; otherwise `bundled:NAME` (assembled into `cache_dir`) or a GGUF path, run in-process."""
    if base_url:
        return OpenAICompatibleModel(base_url, spec, api_key=api_key)
    if spec.startswith(BUNDLED_PREFIX):
        return LlamaCppModel(resolve(spec, cache_dir), n_ctx=n_ctx, n_threads=n_threads, name=spec)
    return LlamaCppModel(Path(spec).expanduser(), n_ctx=n_ctx, n_threads=n_threads)
