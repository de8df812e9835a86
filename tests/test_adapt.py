"""Dialect adaptation: the CTranslate2 -> Hugging Face conversion, fine-tuning, export, registry, routing,
and the dialect classifier. Speech comes from the project's own TTS; nothing here reads ../shared."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from core.bundled import resolve

MODEL_CACHE = Path(os.environ.get("HOTLINE_TEST_MODEL_CACHE", "/tmp/mc"))
RATE = 16000
# Hotline sentences, spoken by the TTS and taken as their own transcripts.
SENTENCES = ("我的宽带断了。", "帮我查一下话费。", "我要办理停机。", "这个月流量还剩多少？")


@pytest.fixture(scope="module")
def base_model() -> Path:
    return resolve("bundled:whisper-base", MODEL_CACHE)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SENTENCES as 16 kHz WAV files and a manifest (lang minnan: the test adapts the minnan entry)."""
    from adapt.lid import synthesize_mandarin

    folder = tmp_path_factory.mktemp("clips")
    made = synthesize_mandarin(folder, SENTENCES, test_every=len(SENTENCES) + 1)
    manifest = folder / "minnan.jsonl"
    lines = [json.loads(line) for line in made["train"].read_text(encoding="utf-8").splitlines()]
    manifest.write_text("".join(json.dumps({**line, "lang": "minnan"}, ensure_ascii=False) + "\n" for line in lines),
                        encoding="utf-8")
    return manifest


# ---- conversion ------------------------------------------------------------------------------------


def test_the_ct2_file_is_read_whole(base_model: Path) -> None:
    from adapt.ct2_weights import read_ct2_weights

    weights = read_ct2_weights(base_model / "model.bin")
    assert weights.spec == "WhisperSpec"
    assert weights.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert weights.get("decoder/projection/weight").shape == (51865, 512)
    assert weights.scalar("encoder/num_heads") == 8


def test_conversion_fills_every_hf_parameter_and_nothing_else(base_model: Path) -> None:
    from transformers import WhisperForConditionalGeneration

    from adapt.convert import hf_state_dict, vocabulary, whisper_config
    from adapt.ct2_weights import read_ct2_weights

    weights = read_ct2_weights(base_model / "model.bin")
    converted = hf_state_dict(weights)
    expected = WhisperForConditionalGeneration(whisper_config(weights, vocabulary(base_model))).state_dict()
    assert set(converted) == set(expected)
    assert {name: tuple(a.shape) for name, a in converted.items()} == {n: tuple(t.shape) for n, t in expected.items()}
    # q/k/v were fused in one CTranslate2 matrix: the split gives back three different projections
    q, k = converted["model.decoder.layers.0.self_attn.q_proj.weight"], converted["model.decoder.layers.0.self_attn.k_proj.weight"]
    assert not np.allclose(q, k)


def test_conversion_keeps_the_vocabulary_and_special_tokens(base_model: Path) -> None:
    from adapt.convert import load_hf_whisper

    model, tokens = load_hf_whisper(base_model)
    assert len(tokens) == model.config.vocab_size == 51865
    assert tokens[model.config.decoder_start_token_id] == "<|startoftranscript|>"
    assert model.generation_config.lang_to_id["<|zh|>"] == tokens.index("<|zh|>")
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()


@pytest.mark.slow
def test_converted_model_writes_the_same_tokens_as_ctranslate2(base_model: Path, clips: Path) -> None:
    import ctranslate2
    import torch
    from faster_whisper.feature_extractor import FeatureExtractor

    from adapt.convert import load_hf_whisper
    from adapt.data import load_audio, load_tokenizer, log_mel, task_prompt, window_frames
    from adapt.torch_whisper import encode, greedy_decode

    model, _ = load_hf_whisper(base_model)
    prompt = task_prompt(load_tokenizer(base_model), "zh")
    extractor = FeatureExtractor()
    audio = load_audio(clips.parent / "mandarin-0000.wav")
    features = log_mel(audio, window_frames(len(audio), margin_s=3.0, hop_length=extractor.hop_length), extractor)
    with torch.no_grad():
        hf = greedy_decode(model, encode(model, torch.from_numpy(features)[None]), prompt.tokens, end=prompt.end,
                           max_new_tokens=40)[0]
    ct2 = ctranslate2.models.Whisper(str(base_model), device="cpu", compute_type="float32", intra_threads=2)
    result = ct2.generate(ct2.encode(ctranslate2.StorageView.from_array(features[None])), [list(prompt.tokens)],
                          beam_size=1, max_length=len(prompt.tokens) + 40, suppress_blank=False, suppress_tokens=[])[0]
    assert len(hf) >= 3
    assert hf == [t for t in result.sequences_ids[0] if t < prompt.end]


# ---- data ------------------------------------------------------------------------------------------


def test_windows_follow_the_recognizer_margin_and_stop_at_30_s() -> None:
    from adapt.data import window_frames

    assert window_frames(2 * RATE, margin_s=3.0, hop_length=160) == 500  # 2 s + 3 s, in 10 ms frames
    assert window_frames(round(2.2 * RATE), margin_s=3.0, hop_length=160) == 600  # rounded up to whole seconds
    assert window_frames(40 * RATE, margin_s=3.0, hop_length=160) == 3000


def test_batches_hold_one_window_length_and_are_reproducible() -> None:
    import torch

    from adapt.train import Sample, batches

    samples = [Sample(frames, [1], "x", 1.0, torch.zeros(1)) for frames in (400, 500, 400, 500, 400, 600)]
    order = batches(samples, 2, seed=3)
    assert sorted(i for batch in order for i in batch) == list(range(6))
    assert all(len({samples[i].frames for i in batch}) == 1 for batch in order)
    assert order == batches(samples, 2, seed=3)


def test_registering_keeps_the_shipped_codes_and_lexicon(tmp_path: Path) -> None:
    from adapt.registry import register_dialect_model
    from asr.dialects import load_registry

    registry_file = tmp_path / "dialects.yaml"
    register_dialect_model(registry_file, "hakka", tmp_path / "model", beam_size=3)
    register_dialect_model(registry_file, "hakka", tmp_path / "model2")
    hakka = load_registry(registry_file).get("kejia")
    assert hakka is not None and hakka.model == str((tmp_path / "model2").resolve()) and hakka.beam_size == 3
    assert hakka.lexicon["𠊎"] == "我" and hakka.language == "zh"
    assert load_registry(registry_file).get("minnan").model is None  # type: ignore[union-attr]


# ---- the whole pipeline ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_adapt_export_register_and_a_call_routed_to_the_new_model(
    base_model: Path, clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from asr.dialects import use_registry_file
    from asr.stream import StreamingAsr
    from core.audio import AudioChunk, from_float
    from core.concurrency import InferencePool
    from core.events import FinalTranscript
    from gateway.cli import main
    from gateway.services import load_asr
    from gateway.settings import Settings

    registry_file, out = tmp_path / "dialects.yaml", tmp_path / "minnan"
    monkeypatch.setenv("HOTLINE_MODEL_DIR", str(MODEL_CACHE))
    code = await asyncio.to_thread(main, [
        "adapt", "asr", "--dialect", "minnan", "--train", str(clips), "--dev", str(clips), "--out", str(out),
        "--epochs", "1", "--rank", "4", "--batch-size", "2", "--limit", "4", "--dev-limit", "2",
        "--registry", str(registry_file),
    ])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    model_dir = Path(summary["model_dir"]).resolve()  # noqa: ASYNC240 (a test: blocking is fine)
    assert summary["steps"] == 2 and summary["train_clips"] == 4 and summary["dev_cer_after"] is not None
    assert {"model.bin", "config.json", "tokenizer.json"} <= set(os.listdir(model_dir))
    assert "checkpoint.pt" in os.listdir(out)
    base_dir = base_model.resolve()  # noqa: ASYNC240

    settings = Settings(model_dir=MODEL_CACHE, asr={"dialects_file": registry_file, "compute_type": "int8"})
    try:
        transcriber, vad = await asyncio.to_thread(load_asr, settings)  # as `hotline serve` loads it
        assert transcriber.model_for("minnan") == model_dir
        assert transcriber.model_for("mandarin") == base_dir  # Mandarin stays on the base model
        from adapt.data import load_audio

        pcm = from_float(np.concatenate([np.zeros(RATE // 2, np.float32), load_audio(clips.parent / "mandarin-0001.wav"),
                                         np.zeros(RATE, np.float32)]))
        pool = InferencePool("adapt-test", 1)

        async def frames():  # type: ignore[no-untyped-def]
            for start in range(0, len(pcm), 320):
                yield AudioChunk(pcm[start : start + 320], RATE)
                await asyncio.sleep(0)

        try:
            recognizer = StreamingAsr(transcriber, vad.stream, pool, dialect="hokkien")
            finals = [e async for e in recognizer.run(frames()) if isinstance(e, FinalTranscript)]
        finally:
            pool.close()
        assert finals and all(f.dialect == "minnan" for f in finals)
        assert "".join(f.text for f in finals)
    finally:
        use_registry_file(None)


# ---- dialect identification --------------------------------------------------------------------------


def test_the_dialect_classifier_learns_separable_classes_and_survives_a_round_trip(tmp_path: Path) -> None:
    from adapt.lid import LabelledFeatures, confusion, fit
    from asr.lid import DialectClassifier

    rng = np.random.default_rng(0)
    centres = {"mandarin": 0.0, "minnan": 3.0, "hakka": -3.0}
    rows = [(rng.normal(c, 1.0, 8), name) for name, c in centres.items() for _ in range(30)]
    data = LabelledFeatures(np.stack([r for r, _ in rows]).astype(np.float32), [n for _, n in rows])
    classifier = fit(data, seconds=4.0)
    report = confusion(classifier, data)
    assert report["accuracy"] > 0.95 and report["confusion"]["minnan"]["minnan"] >= 28
    classifier.save(tmp_path / "lid.npz")
    again = DialectClassifier.load(tmp_path / "lid.npz")
    assert again.classes == classifier.classes and again.seconds == 4.0
    assert again.predict(data.features) == classifier.predict(data.features)


@pytest.mark.slow
def test_dialect_features_pool_the_encoder_over_the_first_seconds(base_model: Path, clips: Path) -> None:
    from adapt.data import load_audio
    from adapt.lid import load_whisper
    from asr.lid import lid_features

    whisper = load_whisper(base_model)
    audio = load_audio(clips.parent / "mandarin-0002.wav")
    features = lid_features(whisper, audio, seconds=1.0)
    assert features.shape == (1024,) and np.isfinite(features).all()
    assert not np.allclose(features, lid_features(whisper, audio, seconds=2.0))


@pytest.mark.slow
@pytest.mark.parametrize(("mandarin_confidence", "route"), [(0.5, "mandarin"), (1.0, "minnan")])
def test_routing_report_says_where_auto_calls_would_go(
    mandarin_confidence: float, route: str, clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The clips are clear Mandarin (the Mandarin model's confidence 0.58-0.91) labelled minnan; a
    classifier sure of Minnan whatever it hears moves them only when the Mandarin model is not sure enough."""
    from asr.lid import DialectClassifier
    from gateway.cli import main

    features, classes = 1024, ("mandarin", "minnan")
    DialectClassifier(classes, np.zeros(features), np.ones(features), np.zeros((features, 2)), np.array([0.0, 20.0]),
                      seconds=4.0).save(tmp_path / "lid.npz")
    monkeypatch.setenv("HOTLINE_MODEL_DIR", str(MODEL_CACHE))
    monkeypatch.setenv("HOTLINE_ASR__LID_MANDARIN_CONFIDENCE", str(mandarin_confidence))
    assert main(["adapt", "lid", "--eval", str(clips), "--out", str(tmp_path / "lid.npz"), "--routing"]) == 0

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["eval"]["confusion"]["minnan"]["minnan"] == len(SENTENCES)  # what the classifier says
    assert summary["routing"]["confusion"]["minnan"][route] == len(SENTENCES)  # where calls go


def test_a_classifier_of_dialects_the_registry_does_not_know_is_refused_at_load(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from asr.lid import AutoDialect, DialectClassifier
    from gateway.services import load_dialect_identifier
    from gateway.settings import Settings

    transcriber = SimpleNamespace(whisper_model=None)
    assert load_dialect_identifier(Settings(), transcriber) is None  # no classifier set: auto stays as it was
    for classes in (("mandarin", "minnan"), ("mandarin", "martian")):
        path = tmp_path / f"{classes[1]}.npz"
        DialectClassifier(classes, np.zeros(4), np.ones(4), np.zeros((4, 2)), np.zeros(2), seconds=4.0).save(path)
        settings = Settings.model_validate({"asr": {"lid_file": path, "lid_min_probability": 0.9}})
        if classes[1] == "martian":
            with pytest.raises(ValueError, match="martian"):
                load_dialect_identifier(settings, transcriber)
        else:
            identifier = load_dialect_identifier(settings, transcriber)
            assert isinstance(identifier, AutoDialect) and identifier.min_probability == 0.9


@pytest.mark.parametrize(
    ("dialect", "heard", "mandarin"),
    [
        ("minnan", "我毋是欲停机，阮个网路袂使用", "我不是要停机，我们的网路不能用"),
        ("minnan", "汝佇佗位？啥物时阵会好？", "你在哪里？什么时候会好？"),
        ("minnan", "我要一个月的套餐", "我要一个月的套餐"),  # 个 alone stays Mandarin's classifier
        ("hakka", "𠊎个手机毋系坏忒，么个时候会好？", "我的手机不是坏忒，什么时候会好？"),
        ("mindong", "伓是", "不是"),
        ("cantonese", "上个月嘅话费点样开发票", "上个月的话费怎么开发票"),  # 点样 asks how
        ("cantonese", "停機保號一個月要俾幾多錢", "停机保号一个月要给多少钱"),  # traditional characters too
        ("mandarin", "我家寬帶斷了", "我家宽带断了"),
        ("northeastern", "网贼拉慢 这是嘎哈呢", "网很慢 这是干什么呢"),
    ],
)
def test_dialect_written_forms_reach_the_dialogue_as_mandarin(dialect: str, heard: str, mandarin: str) -> None:
    from asr.dialects import to_mandarin

    assert to_mandarin(heard, dialect) == mandarin


@pytest.mark.slow
def test_a_run_stopped_by_its_time_limit_resumes_from_its_checkpoint(base_model: Path, clips: Path, tmp_path: Path) -> None:
    from adapt.base import AdaptOptions
    from adapt.train import adapt_asr

    lines: list[str] = []
    options = AdaptOptions(dialect="minnan", train=clips, dev=None, out=tmp_path / "run", base=base_model, epochs=1,
                           rank=4, batch_size=2, max_minutes=0.0, export=False)
    first = adapt_asr(options, log=lines.append)
    assert first.stopped_by_time and first.steps == 1 and first.model_dir is None
    second = adapt_asr(AdaptOptions(**{**options.__dict__, "max_minutes": None}), log=lines.append)
    assert not second.stopped_by_time and second.steps == 2 and second.epochs_done == 1.0
    assert any(line.startswith("resuming from") for line in lines)


def test_the_epoch_best_on_dev_is_exported_not_a_later_worse_one(tmp_path: Path) -> None:
    import torch

    from adapt.train import Progress, _keep_if_best, _restore_best

    model = torch.nn.Linear(2, 1)
    progress = Progress(step=10)
    best_weights = model.weight.detach().clone()
    _keep_if_best(model, progress, 0.60, tmp_path)
    with torch.no_grad():
        model.weight.add_(1.0)  # the next epoch overfits
    progress.step = 20
    _keep_if_best(model, progress, 0.74, tmp_path)
    assert (progress.best_dev_cer, progress.best_step) == (0.60, 10)

    logged: list[str] = []
    assert _restore_best(model, progress, 0.74, tmp_path, logged.append) == 0.60
    assert torch.equal(model.weight, best_weights) and "step 10" in logged[0]
    # when the last epoch is the best, its weights stay
    with torch.no_grad():
        model.weight.add_(1.0)
    kept = model.weight.detach().clone()
    assert _restore_best(model, Progress(best_dev_cer=0.5, best_step=3), 0.4, tmp_path, logged.append) == 0.4
    assert torch.equal(model.weight, kept)
