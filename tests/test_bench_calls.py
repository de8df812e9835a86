"""`hotline bench calls` driven briefly against the in-process app: its summary, and nothing lost."""

from __future__ import annotations

import json
import shutil

import pytest

QUESTION = "请问宽带安装费是多少？"


@pytest.mark.slow
def test_bench_calls_with_two_callers_prints_its_summary_last_and_loses_nothing(live_hotline, say, tmp_path, capsys):
    from gateway.cli import main

    audio = tmp_path / "turns"
    audio.mkdir()
    shutil.copy(say(QUESTION), audio / "01-question.wav")
    code = main(["bench", "calls", "--concurrency", "2", "--duration", "8", "--url", live_hotline.url,
                 "--audio", str(audio), "--token", live_hotline.headers["Authorization"].removeprefix("Bearer ")])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert {"completed", "dropped", "busy", "lost", "final_ms", "first_audio_ms", "cpu", "rss_mb"} <= set(summary)
    assert summary["completed"] >= 2 and summary["dropped"] == 0 and summary["busy"] == 0
    assert summary["lost"] == 0
    assert summary["turns"] >= 2
    assert summary["final_ms"]["p50"] is not None and summary["first_audio_ms"]["p95"] is not None
