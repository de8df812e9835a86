"""`hotline bench voice` against the live hotline: its calls, its summary printed last."""

from __future__ import annotations

import json

import pytest


# Whether the bot stops for a barge-in is asserted in test_barge_in.py; here the bench itself is under test.
# Whisper base now and then mishears the bundled voice's short objection, which the bench reports as a
# miss (and a non-zero exit) rather than hiding it: two rounds, so that each figure is timed at least once.
@pytest.mark.slow
def test_bench_voice_times_a_barge_in_an_objection_and_a_turn_and_prints_its_summary_last(live_hotline, capsys):
    from gateway.cli import main

    code = main(["bench", "voice", "--rounds", "2", "--url", live_hotline.url])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    missed = summary["not_interrupted"] + summary["objection_not_interrupted"]
    assert (code == 0) == (missed == 0) and missed <= 1, summary
    for figure in ("interrupted_from_onset_ms", "objection_interrupted_from_onset_ms", "interrupted_from_threshold_ms", "last_greeting_frame_from_onset_ms",
                   "speech_end_to_reply_audio_ms", "reply_text_to_audio_ms"):
        assert summary[figure]["p50"] is not None, figure
    assert summary["sentences_timed"] >= 1
