"""The call page at `/`: served offline by the gateway, and a real headless Chromium calling with a fake mic."""

from __future__ import annotations

import os
import re
import shutil
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TTS_VOICE_CER
from fastapi.testclient import TestClient

from asr.cer import cer
from gateway.app import create_app
from gateway.settings import Settings

QUESTION = "请问宽带安装费是多少？"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WAIT_MS = 240_000  # models on a busy 2-core machine: recognition and the answer can take a while


def _app_client(tmp_path: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path, **settings), models=()))


def test_the_page_and_everything_it_loads_come_from_the_gateway(tmp_path: Path):
    with _app_client(tmp_path) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sorted(assets) == ["/static/call.css", "/static/call.js"]
        script = client.get("/static/call.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        worklet = client.get("/static/capture-worklet.js")
        assert worklet.status_code == 200 and "registerProcessor" in worklet.text
        for text in (page.text, script.text, worklet.text, client.get("/static/call.css").text):
            assert not re.search(r"https?://", text), "works offline: no CDN or other site"


def test_cited_titles_follow_the_call_token(tmp_path: Path):
    with _app_client(tmp_path, call_token="call-token-of-the-page-test-0123456789") as client:
        assert client.get("/v1/call-page/sources", params={"ids": "broadband"}).status_code == 401
        allowed = client.get("/v1/call-page/sources",
                             params={"ids": "no-such-doc", "token": "call-token-of-the-page-test-0123456789"})
        assert allowed.status_code == 200 and allowed.json() == {"titles": {}}


# --- a real browser ----------------------------------------------------------------------------


def _caller_wav(path: Path) -> Path:
    """Silence while the greeting plays, the question, then a long silence (Chromium loops the file)."""
    from core.audio import resample
    from tts.loader import load_synthesizer

    synth = load_synthesizer("auto")
    question = resample(synth.synthesize(QUESTION), synth.sample_rate, 16000)
    pcm = np.concatenate([np.zeros(16000 * 8, np.int16), question, np.zeros(16000 * 60, np.int16)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from gateway.caller import start_in_process

    model_dir = Path(os.environ.get("HOTLINE_TEST_MODEL_CACHE", "/tmp/mc"))
    settings = Settings(data_dir=tmp_path_factory.mktemp("page-data"), model_dir=model_dir,
                        llm={"model": "bundled:qwen2.5-0.5b"})
    url, server = start_in_process(settings)
    try:
        yield url.replace("ws://", "http://").removesuffix("/v1/calls") + "/"
    finally:
        server.should_exit = True


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium); the page test needs it")
def test_a_browser_calls_asks_and_hears_a_cited_answer(page_url: str, tmp_path: Path):
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    microphone = _caller_wav(tmp_path / "caller.wav")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}", "--autoplay-policy=no-user-gesture-required",
        ])
        try:
            page = browser.new_page(viewport={"width": 760, "height": 640})
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(page_url)
            page.click("#call")
            page.wait_for_selector('#status[data-state="live"]', timeout=30_000)
            caller_line = page.wait_for_selector("#transcript li.caller", timeout=WAIT_MS)
            heard = caller_line.inner_text().removeprefix("您").strip()
            assert cer(QUESTION, heard) < TTS_VOICE_CER, heard
            cited = page.wait_for_selector("#transcript li.bot .citations:not(:empty)", timeout=WAIT_MS)
            assert cited.inner_text().startswith("来源：") and cited.get_attribute("data-ids")
            answer = page.locator("#transcript li.bot", has=page.locator(".citations:not(:empty)")).first
            assert re.search(r"元|费", answer.inner_text()), answer.inner_text()
            played = int(page.get_attribute("#played", "data-ms") or 0)
            page.wait_for_function(f"Number(document.getElementById('played').dataset.ms) > {played + 500}",
                                   timeout=WAIT_MS)
            page.screenshot(path=str(tmp_path / "call-page.png"))
            if target := os.environ.get("HOTLINE_CALL_PAGE_SCREENSHOT"):
                shutil.copy(tmp_path / "call-page.png", target)
            page.click("#hangup")
            page.wait_for_selector('#status[data-state="ended"]', timeout=30_000)
            assert not page.locator("#notices .error").count(), page.locator("#notices").inner_text()
        finally:
            browser.close()
