"""LLM clients: the bundled 0.5B GGUF in-process, and the HTTP client against a real llama.cpp server."""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.bundled import resolve
from dialogue.base import ChatMessage, GenerationOptions
from dialogue.llm import (
    ContextTooLongError,
    GenerationTimings,
    LlamaCppModel,
    ModelLoadError,
    OpenAICompatibleModel,
    ServerError,
    ServerUnreachableError,
    chat_completions_url,
    load_language_model,
)

MODEL_CACHE = Path(os.environ.get("HOTLINE_TEST_MODEL_CACHE", "/tmp/mc"))
SMALL_MODEL = "bundled:qwen2.5-0.5b"
CJK = re.compile(r"[\u4e00-\u9fff]")

SYSTEM = ChatMessage("system", "你是中国电信的客服助手。请用简体中文简短回答客户的问题。")
QUESTION = ChatMessage("user", "家里的宽带突然连不上网了，我应该先做什么？")
GREEDY = GenerationOptions(max_tokens=40, temperature=0.0)


def long_answer_request() -> list[ChatMessage]:
    return [SYSTEM, ChatMessage("user", "请写一篇两千字的文章，详细介绍中国电信的全部业务和发展历史。")]


@pytest.fixture(scope="module")
def local_model() -> Iterator[LlamaCppModel]:
    model = load_language_model(
        SMALL_MODEL, cache_dir=MODEL_CACHE, n_threads=2, n_ctx=2048, base_url=None, api_key=None
    )
    assert isinstance(model, LlamaCppModel)
    yield model
    model.close()


@pytest.mark.slow
def test_answers_a_chinese_question_with_chinese_text_in_several_pieces(local_model: LlamaCppModel) -> None:
    pieces = list(local_model.stream([SYSTEM, QUESTION], GREEDY))

    text = "".join(pieces)
    assert len(pieces) >= 3
    assert len(CJK.findall(text)) >= 4, text
    assert local_model.name == SMALL_MODEL


@pytest.mark.slow
def test_stopping_iteration_cancels_the_generation(local_model: LlamaCppModel) -> None:
    before = local_model.counters()
    pieces = local_model.stream(long_answer_request(), GenerationOptions(max_tokens=1500))
    first = [next(pieces) for _ in range(3)]
    pieces.close()

    # With one slot, this request could only start once the abandoned one had ended.
    follow_up = "".join(local_model.stream([SYSTEM, QUESTION], GenerationOptions(max_tokens=8)))

    after = local_model.counters()
    assert all(first) and follow_up
    assert after.generated_tokens - before.generated_tokens < 60


@pytest.mark.slow
def test_a_shared_system_prompt_is_not_evaluated_again(local_model: LlamaCppModel) -> None:
    timings: list[GenerationTimings] = []
    options = GenerationOptions(max_tokens=4, temperature=0.0)
    # a system prompt no other test uses, so no earlier request has left it in the cache
    system = ChatMessage(
        "system", "你是中国电信营业厅的值班客服，只回答与话费和宽带有关的问题，每次不超过两句话。"
    )
    list(local_model.stream([system, QUESTION], options, on_timings=timings.append))
    list(
        local_model.stream(
            [system, ChatMessage("user", "手机欠费停机了怎么交费？")], options, on_timings=timings.append
        )
    )

    first, second = timings
    system_prompt_tokens = 20
    assert first.cached_tokens < system_prompt_tokens
    assert second.cached_tokens >= system_prompt_tokens
    assert second.prompt_tokens < first.prompt_tokens + first.cached_tokens


@pytest.mark.slow
def test_serves_requests_from_several_threads(local_model: LlamaCppModel) -> None:
    answers: dict[int, str] = {}

    def ask(index: int) -> None:
        question = ChatMessage("user", f"用一句话说明套餐{index}号是什么意思。")
        answers[index] = "".join(local_model.stream([SYSTEM, question], GenerationOptions(max_tokens=12)))

    workers = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sorted(answers) == [0, 1, 2]
    assert all(answers.values())


def test_missing_model_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist") as caught:
        LlamaCppModel(tmp_path / "absent.gguf")
    assert caught.value.path == tmp_path / "absent.gguf"


def test_a_file_that_is_not_gguf_is_a_load_error(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_text("<html>not found</html>")
    with pytest.raises(ModelLoadError, match="not a GGUF"):
        LlamaCppModel(weights)


def test_a_directory_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a file"):
        load_language_model(
            str(tmp_path), cache_dir=tmp_path, n_threads=1, n_ctx=512, base_url=None, api_key=None
        )


def test_a_corrupt_gguf_is_a_load_error(tmp_path: Path) -> None:
    weights = tmp_path / "truncated.gguf"
    weights.write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(64))
    with pytest.raises(ModelLoadError, match="llama.cpp could not load it"):
        LlamaCppModel(weights, n_ctx=512, n_threads=1)


def test_bad_requests_are_rejected_before_generation(tmp_path: Path) -> None:
    model = OpenAICompatibleModel("http://127.0.0.1:9", "any")
    with pytest.raises(ValueError, match="at least one message"):
        list(model.stream([], GREEDY))
    with pytest.raises(ValueError, match="max_tokens"):
        list(model.stream([QUESTION], GenerationOptions(max_tokens=0)))


def test_base_url_selects_the_http_client_and_accepts_both_url_forms(tmp_path: Path) -> None:
    model = load_language_model(
        "qwen2.5-7b", cache_dir=tmp_path, n_threads=2, n_ctx=4096, base_url="http://gpu:8000", api_key="k"
    )
    assert isinstance(model, OpenAICompatibleModel)
    assert model.name == "qwen2.5-7b"
    assert chat_completions_url("http://gpu:8000") == "http://gpu:8000/v1/chat/completions"
    assert chat_completions_url("http://gpu:8000/v1/") == "http://gpu:8000/v1/chat/completions"
    with pytest.raises(ValueError, match="http"):
        chat_completions_url("gpu:8000")


def test_an_unreachable_server_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = OpenAICompatibleModel(f"http://127.0.0.1:{port}", "any", timeout=5)
    with pytest.raises(ServerUnreachableError, match=str(port)):
        list(model.stream([QUESTION], GREEDY))


# --- against a real OpenAI-compatible server: llama.cpp's own HTTP server, as xllamacpp runs it ----------

SERVER_KEY = "test-key"


@pytest.fixture(scope="module")
def llama_server() -> Iterator[Any]:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(resolve(SMALL_MODEL, MODEL_CACHE))
    params.n_ctx = 1024
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    params.api_keys = [SERVER_KEY]
    params.endpoint_metrics = True
    params.verbosity = -1
    server = xllamacpp.Server(params)
    yield server
    del server


@pytest.mark.slow
def test_http_client_streams_chinese_text_from_a_llama_cpp_server(llama_server: Any) -> None:
    model = OpenAICompatibleModel(llama_server.listening_address, "qwen", api_key=SERVER_KEY)
    timings: list[GenerationTimings] = []

    pieces = list(model.stream([SYSTEM, QUESTION], GREEDY, on_timings=timings.append))

    assert len(pieces) >= 3
    assert len(CJK.findall("".join(pieces))) >= 4
    assert timings and timings[0].generated_tokens > 0
    model.close()


@pytest.mark.slow
def test_http_client_reports_a_wrong_api_key(llama_server: Any) -> None:
    model = OpenAICompatibleModel(llama_server.listening_address, "qwen", api_key="wrong")
    with pytest.raises(ServerError, match="API key") as caught:
        list(model.stream([QUESTION], GREEDY))
    assert caught.value.status_code == 401


@pytest.mark.slow
def test_http_client_reports_a_prompt_longer_than_the_context(llama_server: Any) -> None:
    model = OpenAICompatibleModel(llama_server.listening_address, "qwen", api_key=SERVER_KEY)
    with pytest.raises(ContextTooLongError, match="context"):
        list(model.stream([ChatMessage("user", "宽带故障" * 800)], GREEDY))


@pytest.mark.slow
def test_closing_the_http_stream_stops_the_server_decoding(llama_server: Any) -> None:
    model = OpenAICompatibleModel(llama_server.listening_address, "qwen", api_key=SERVER_KEY)
    pieces = model.stream(long_answer_request(), GenerationOptions(max_tokens=800))
    first = [next(pieces) for _ in range(3)]
    pieces.close()

    follow_up = "".join(model.stream([SYSTEM, QUESTION], GenerationOptions(max_tokens=8)))

    counter = re.search(r"^llamacpp:tokens_predicted_total (\S+)$", llama_server.handle_metrics(), re.M)
    assert counter is not None
    generated = float(counter.group(1))
    assert all(first) and follow_up
    # everything this server decoded in the whole module stays far below the abandoned 800
    assert generated < 400
