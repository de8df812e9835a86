"""The words and audio rules of a barge-in, without models: backchannels, the bot's echo, real words."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from core.echo import echo_likeness
from gateway.barge_in import CutInRules
from gateway.settings import BACKCHANNELS, OBJECTIONS, CallSettings, Settings
from tts.stream import SpokenClauses, text_prefix

GREETING = "您好，欢迎致电云帆通信客服热线，我是智能客服，请问有什么可以帮您？"
RULES = CutInRules(BACKCHANNELS, echo_share=0.5)


@pytest.mark.parametrize("heard", ["嗯", "对", "好的", "好的好的", "嗯，对", "对对对", "是的。", "哦", "OK"])
def test_backchannels_do_not_cut_in(heard):
    assert RULES.is_backchannel(heard)
    assert not RULES.meant(heard, GREETING)


@pytest.mark.parametrize("heard", [
    "您好欢迎致电云帆通信",
    "在营治殿允翻通行",  # what Whisper wrote for the greeting's echo at -12 dB: right sounds, wrong characters
    "请问有什么可以帮您",
])
def test_the_bots_own_words_coming_back_do_not_cut_in(heard):
    assert RULES.is_echo(heard, GREETING)
    assert not RULES.meant(heard, GREETING)


@pytest.mark.parametrize("heard", ["等一下，我想问别的", "不对", "我要转人工", "宽带坏了", "对了，我想问一下话费"])
def test_a_callers_own_words_cut_in(heard):
    assert RULES.meant(heard, GREETING)


def test_numbers_are_compared_as_spoken():
    assert RULES.is_echo("请拨打幺零零七七", "如需帮助请拨打10077。")


def test_nothing_heard_is_not_meant():
    assert not RULES.meant("", GREETING) and not RULES.meant("，。", GREETING)


def test_backchannels_come_from_the_settings():
    calls = CallSettings(backchannels="嗯 好嘞")
    assert calls.backchannels == ["嗯", "好嘞"]
    rules = CutInRules(calls.backchannels, calls.echo_share)
    assert rules.is_backchannel("好嘞好嘞") and not rules.is_backchannel("好的")


def test_an_attenuated_delayed_copy_of_the_bots_audio_is_its_echo():
    rng = np.random.default_rng(3)
    played = (rng.normal(0, 3000, 48000)).astype(np.int16)
    echo = (played[21000:29000] * 0.25).astype(np.int16)
    assert echo_likeness(echo, played) > 0.95
    assert echo_likeness((rng.normal(0, 3000, 8000)).astype(np.int16), played) < 0.2
    assert echo_likeness(np.zeros(8000, np.int16), played) == 0.0
    assert echo_likeness(echo, played[:4000]) == 0.0  # less sent than heard: nothing to compare with


OBJECTING = CutInRules(BACKCHANNELS, echo_share=0.5, objections=OBJECTIONS)


@pytest.mark.parametrize("heard", ["不对", "不对不对！", "不是。", "错了", "等一下", "哎，等一下啊", "等等", "停", "停停停",
                                   "别说了", "不用了", "转人工",
                                   # what Whisper wrote for the bundled voice's "不对", "哎不对"
                                   "无对", "舞队", "母队母队", "姆队", "爱不对", "爱不对爱不对"])
def test_objections_cut_in_however_short(heard):
    assert OBJECTING.objects(heard, GREETING)


@pytest.mark.parametrize("heard", ["嗯", "对", "好的", "对对", "嗯对", "对的", "就是", "定", "五十", "", "。", "不对，是幺五八零",
                                   "等一下我想问别的"])
def test_backchannels_and_longer_words_are_not_objections(heard):
    # a longer utterance cuts in the usual way, once it has lasted
    assert not OBJECTING.objects(heard, GREETING)


def test_the_bots_own_objection_words_coming_back_are_its_echo():
    assert not OBJECTING.objects("不对", "如有不对，请直接告诉我。")


def test_no_objections_no_short_cut_in():
    assert not CutInRules(BACKCHANNELS, echo_share=0.5).objects("不对", GREETING)


def test_objections_come_from_the_settings_and_are_checked():
    assert CallSettings().barge_in_objections == list(OBJECTIONS)
    assert CallSettings(barge_in_objections="不对, 慢着").barge_in_objections == ["不对", "慢着"]
    assert CallSettings(barge_in_objections='["打住"]').barge_in_objections == ["打住"]
    assert CallSettings(barge_in_objections="").barge_in_objections == []
    with pytest.raises(ValidationError, match="both an objection"):
        CallSettings(barge_in_objections="不对 好的")
    with pytest.raises(ValidationError, match="both an objection"):
        CallSettings(backchannels="嗯 不是")
    with pytest.raises(ValidationError, match="hold no words"):
        CallSettings(barge_in_objections=["不对", "！"])


def test_objections_from_the_environment(monkeypatch):
    monkeypatch.setenv("HOTLINE_CALLS__BARGE_IN_OBJECTIONS", "不对 打住")
    assert Settings().calls.barge_in_objections == ["不对", "打住"]


def test_the_played_share_of_a_cut_sentence_maps_onto_its_characters():
    spoken = SpokenClauses(total_chars=10, clauses=[(4, 4000), (6, 6000)])
    assert spoken.heard_share(0) == 0.0
    assert spoken.heard_share(2000) == pytest.approx(0.2)  # half of the first clause
    assert spoken.heard_share(7000) == pytest.approx(0.7)  # the first, and half of the second
    assert spoken.heard_share(20000) == 1.0
    assert SpokenClauses(total_chars=10, clauses=[(4, 4000)]).heard_share(9000) == pytest.approx(0.4)
    assert text_prefix("您好，欢迎致电云帆通信。", 0.2) == "您好，"  # 2 of 10 spoken characters, its comma kept
    assert text_prefix("您好，欢迎致电云帆通信。", 0.5) == "您好，欢迎致"
    assert text_prefix("您好，欢迎致电云帆通信。", 0.0) == ""
    assert text_prefix("您好，欢迎致电云帆通信。", 1.0) == "您好，欢迎致电云帆通信。"
