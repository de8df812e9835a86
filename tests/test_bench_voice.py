"""`hotline bench voice` against the live hotline: one call, its summary printed last."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_bench_voice_times_a_barge_in_an_objection_and_a_turn_and_prints_its_summary_last(live_hotline, capsys):
    from gateway.cli import main

    code = main(["bench", "voice", "--rounds", "1", "--url", live_hotline.url])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["not_interrupted"] == summary["objection_not_interrupted"] == 0, summary
    for figure in ("interrupted_from_onset_ms", "objection_interrupted_from_onset_ms", "interrupted_from_threshold_ms", "last_greeting_frame_from_onset_ms",
                   "speech_end_to_reply_audio_ms", "reply_text_to_audio_ms"):
        assert summary[figure]["p50"] is not None, figure
    assert summary["sentences_timed"] >= 1
