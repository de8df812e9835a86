"""The coqui backend, for real: a tiny VITS model built here (random weights) is saved, loaded and spoken."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.audio import AudioFormat, Codec, decode
from core.wav import parse_wav
from gateway.cli import main
from gateway.settings import Settings
from tts.base import SynthesisError
from tts.coqui_backend import CoquiSynthesizer, CoquiVoice
from tts.loader import import_backend, load_synthesizer

try:
    import TTS.api  # noqa: F401

    COQUI_MISSING = ""
except (ImportError, OSError) as exc:  # torchaudio's CUDA libraries raise OSError on a CPU-only torch
    COQUI_MISSING = f"the coqui extra is not importable here ({exc}); `make install-coqui` installs it"

needs_coqui = pytest.mark.skipif(bool(COQUI_MISSING), reason=COQUI_MISSING)

RATE = 16000
SHORT = "您好。"
LONG = "您好，欢迎致电云帆通信，请问有什么可以帮您？您的宽带故障已经登记，工单号是一二三四五。"
VOCABULARY = "".join(sorted(set(SHORT + LONG + "这里是客服热线对不起请稍等零六七八九十") - set("，。？！、 ")))


def build_tiny_vits(folder: Path, *, speakers: list[str] | None = None) -> tuple[Path, Path]:
    """A VITS of about 250k random weights that reads the characters of VOCABULARY; -> (checkpoint, config)."""
    import torch
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models.vits import Vits

    folder.mkdir(parents=True, exist_ok=True)
    args = VitsArgs(
        hidden_channels=16, hidden_channels_ffn_text_encoder=32, num_layers_text_encoder=1,
        num_layers_posterior_encoder=1, num_layers_flow=1, out_channels=257, use_sdp=False,
        resblock_kernel_sizes_decoder=[3], resblock_dilation_sizes_decoder=[[1, 3, 5]],
        upsample_rates_decoder=[8, 8, 4], upsample_kernel_sizes_decoder=[16, 16, 8],
        upsample_initial_channel_decoder=16, init_discriminator=False,
    )
    if speakers:
        speakers_file = folder / "speakers.json"
        speakers_file.write_text(json.dumps({name: i for i, name in enumerate(speakers)}, ensure_ascii=False))
        args.use_speaker_embedding = True
        args.num_speakers = len(speakers)
        args.speakers_file = str(speakers_file)
        args.speaker_embedding_channels = 8
    config = VitsConfig(
        model_args=args,
        audio=BaseAudioConfig(sample_rate=RATE, fft_size=512, win_length=512, hop_length=256, num_mels=40),
        use_phonemes=False,
        text_cleaner="basic_cleaners",
        characters=CharactersConfig(
            characters_class="TTS.tts.models.vits.VitsCharacters", characters=VOCABULARY,
            punctuations="，。？！、 ", pad="<PAD>", eos="<EOS>", bos="<BOS>", blank="<BLNK>",
        ),
        add_blank=True,
    )
    if speakers:
        config.use_speaker_embedding = True
        config.num_speakers = len(speakers)
        config.speakers_file = str(folder / "speakers.json")
    torch.manual_seed(0)
    model = Vits(config)
    checkpoint = folder / "model.pth"
    torch.save({"model": model.state_dict()}, checkpoint)
    config_path = folder / "config.json"
    config.save_json(str(config_path))
    return checkpoint, config_path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if COQUI_MISSING:
        pytest.skip(COQUI_MISSING)
    return build_tiny_vits(tmp_path_factory.mktemp("coqui") / "tiny")


@pytest.fixture(scope="module")
def coqui(tiny_model: tuple[Path, Path]) -> CoquiSynthesizer:
    checkpoint, config = tiny_model
    synth = load_synthesizer("coqui", coqui=CoquiVoice(checkpoint, config))
    assert isinstance(synth, CoquiSynthesizer)
    return synth


@needs_coqui
def test_coqui_speaks_chinese_as_mono_int16_at_the_models_rate(coqui: CoquiSynthesizer) -> None:
    audio = coqui.synthesize(LONG)
    assert coqui.name == "coqui"
    assert coqui.sample_rate == RATE
    assert audio.dtype == np.int16
    assert audio.ndim == 1
    assert len(audio) > 0
    assert np.abs(audio).max() > 0


@needs_coqui
def test_longer_text_gives_more_samples_and_the_same_text_the_same_length(coqui: CoquiSynthesizer) -> None:
    short, long = coqui.synthesize(SHORT), coqui.synthesize(LONG)
    assert 0 < len(short) < len(long)
    assert len(coqui.synthesize(LONG)) == len(long)


@needs_coqui
def test_coqui_drops_its_sentence_padding(coqui: CoquiSynthesizer) -> None:
    """coqui appends silence to every sentence; the stream adds its own pauses, so it is cut off."""
    audio = coqui.synthesize(SHORT)
    assert audio[-1000:].any()


@needs_coqui
def test_text_with_nothing_to_say_gives_no_audio(coqui: CoquiSynthesizer) -> None:
    assert len(coqui.synthesize("")) == 0
    assert len(coqui.synthesize("，。！")) == 0


@needs_coqui
def test_config_defaults_to_the_one_beside_the_checkpoint(tiny_model: tuple[Path, Path]) -> None:
    checkpoint, _ = tiny_model
    synth = load_synthesizer("coqui", coqui=CoquiVoice(checkpoint))
    assert len(synth.synthesize(SHORT)) > 0


@needs_coqui
def test_settings_from_the_environment_load_the_coqui_voice(
    tiny_model: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint, config = tiny_model
    monkeypatch.setenv("HOTLINE_TTS__BACKEND", "coqui")
    monkeypatch.setenv("HOTLINE_TTS__MODEL_PATH", str(checkpoint))
    monkeypatch.setenv("HOTLINE_TTS__CONFIG_PATH", str(config))
    monkeypatch.setenv("HOTLINE_TTS__DEVICE", "cpu")
    tts = Settings().tts
    assert tts.coqui_voice() == CoquiVoice(checkpoint, config, None, None, "cpu")
    import_backend(tts.backend)
    synth = load_synthesizer(tts.backend, threads=tts.threads, coqui=tts.coqui_voice())
    assert synth.sample_rate == RATE


@needs_coqui
def test_hotline_say_speaks_with_the_coqui_voice(
    tiny_model: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call's speaking path: normalization, clauses, resampling to the call's rate, the codec."""
    checkpoint, config = tiny_model
    monkeypatch.setenv("HOTLINE_TTS__BACKEND", "coqui")
    monkeypatch.setenv("HOTLINE_TTS__MODEL_PATH", str(checkpoint))
    monkeypatch.setenv("HOTLINE_TTS__CONFIG_PATH", str(config))
    out = tmp_path / "reply.wav"
    assert main(["say", "您好，工单号是12345。", "--out", str(out), "--codec", "mulaw", "--rate", "8000"]) == 0
    payload, fmt = parse_wav(out.read_bytes())
    assert fmt == AudioFormat(Codec.MULAW, 8000)
    assert np.abs(decode(payload, fmt.codec)).max() > 0


@needs_coqui
def test_multi_speaker_model_speaks_as_the_configured_speaker(tmp_path: Path) -> None:
    checkpoint, config = build_tiny_vits(tmp_path / "two", speakers=["客服甲", "客服乙"])
    synth = load_synthesizer("coqui", coqui=CoquiVoice(checkpoint, config, speaker="客服乙"))
    assert len(synth.synthesize(SHORT)) > 0
    with pytest.raises(SynthesisError, match="客服丙"):
        load_synthesizer("coqui", coqui=CoquiVoice(checkpoint, config, speaker="客服丙"))


@needs_coqui
def test_missing_files_are_named(tiny_model: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, config = tiny_model
    with pytest.raises(SynthesisError, match=f"model file not found: {tmp_path / 'none.pth'}"):
        load_synthesizer("coqui", coqui=CoquiVoice(tmp_path / "none.pth", config))
    with pytest.raises(SynthesisError, match=f"config file not found: {tmp_path / 'config.json'}"):
        load_synthesizer("coqui", coqui=CoquiVoice(checkpoint, tmp_path / "config.json"))


@needs_coqui
def test_a_corrupt_checkpoint_is_a_load_error_naming_it(tiny_model: tuple[Path, Path], tmp_path: Path) -> None:
    _, config = tiny_model
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x00not a torch checkpoint" * 10)
    with pytest.raises(SynthesisError, match=f"could not load the model {corrupt}"):
        load_synthesizer("coqui", coqui=CoquiVoice(corrupt, config))


@needs_coqui
def test_a_cuda_device_without_cuda_is_a_clear_error(tiny_model: tuple[Path, Path]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SynthesisError, match="no CUDA device"):
        load_synthesizer("coqui", coqui=CoquiVoice(*tiny_model, device="cuda"))


def test_coqui_without_a_model_path_says_which_setting_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_TTS__BACKEND", "coqui")
    tts = Settings().tts
    assert tts.coqui_voice() is None
    with pytest.raises(SynthesisError, match="HOTLINE_TTS__MODEL_PATH"):
        load_synthesizer(tts.backend, coqui=tts.coqui_voice())
