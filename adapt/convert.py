"""CTranslate2 Whisper (faster-whisper's format) -> Hugging Face `WhisperForConditionalGeneration`.

The mapping inverts `ctranslate2.converters.transformers.WhisperLoader`: CTranslate2 fuses the
self-attention q/k/v projections into one `linear_0` (k has no bias, stored as zeros) and the
cross-attention k/v into `linear_1`; `ffn.layer_norm` is HF's `final_layer_norm`; the output
projection is an alias of the token embeddings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from adapt.ct2_weights import Ct2Weights, read_ct2_weights

SOT = "<|startoftranscript|>"
EOT = "<|endoftext|>"


def _linear(out: dict[str, np.ndarray], hf: str, weights: Ct2Weights, ct2: str) -> None:
    out[f"{hf}.weight"] = weights.get(f"{ct2}/weight")
    if f"{ct2}/bias" in weights.variables:
        out[f"{hf}.bias"] = weights.get(f"{ct2}/bias")


def _layer_norm(out: dict[str, np.ndarray], hf: str, weights: Ct2Weights, ct2: str) -> None:
    out[f"{hf}.weight"] = weights.get(f"{ct2}/gamma")
    out[f"{hf}.bias"] = weights.get(f"{ct2}/beta")


def _split(array: np.ndarray, parts: int) -> list[np.ndarray]:
    return list(np.split(array, parts, axis=0))


def _self_attention(out: dict[str, np.ndarray], hf: str, weights: Ct2Weights, ct2: str) -> None:
    q, k, v = _split(weights.get(f"{ct2}/linear_0/weight"), 3)
    bq, _bk, bv = _split(weights.get(f"{ct2}/linear_0/bias"), 3)
    out.update({f"{hf}.q_proj.weight": q, f"{hf}.q_proj.bias": bq, f"{hf}.k_proj.weight": k,
                f"{hf}.v_proj.weight": v, f"{hf}.v_proj.bias": bv})
    _linear(out, f"{hf}.out_proj", weights, f"{ct2}/linear_1")


def _cross_attention(out: dict[str, np.ndarray], hf: str, weights: Ct2Weights, ct2: str) -> None:
    _linear(out, f"{hf}.q_proj", weights, f"{ct2}/linear_0")
    k, v = _split(weights.get(f"{ct2}/linear_1/weight"), 2)
    _bk, bv = _split(weights.get(f"{ct2}/linear_1/bias"), 2)
    out.update({f"{hf}.k_proj.weight": k, f"{hf}.v_proj.weight": v, f"{hf}.v_proj.bias": bv})
    _linear(out, f"{hf}.out_proj", weights, f"{ct2}/linear_2")


def _ffn(out: dict[str, np.ndarray], hf: str, weights: Ct2Weights, ct2: str) -> None:
    _linear(out, f"{hf}.fc1", weights, f"{ct2}/ffn/linear_0")
    _linear(out, f"{hf}.fc2", weights, f"{ct2}/ffn/linear_1")
    _layer_norm(out, f"{hf}.final_layer_norm", weights, f"{ct2}/ffn/layer_norm")


def layer_count(weights: Ct2Weights, stack: str) -> int:
    pattern = re.compile(rf"{stack}/layer_(\d+)/")
    return len({m.group(1) for name in weights.variables if (m := pattern.match(name))})


def hf_state_dict(weights: Ct2Weights) -> dict[str, np.ndarray]:
    """The Hugging Face Whisper parameters (names of `WhisperForConditionalGeneration`) as float32 arrays."""
    if weights.spec != "WhisperSpec":
        raise ValueError(f"not a Whisper model: {weights.spec}")
    out: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        _linear(out, f"model.encoder.{conv}", weights, f"encoder/{conv}")
    out["model.encoder.embed_positions.weight"] = weights.get("encoder/position_encodings/encodings")
    for i in range(layer_count(weights, "encoder")):
        hf, ct2 = f"model.encoder.layers.{i}", f"encoder/layer_{i}"
        _self_attention(out, f"{hf}.self_attn", weights, f"{ct2}/self_attention")
        _layer_norm(out, f"{hf}.self_attn_layer_norm", weights, f"{ct2}/self_attention/layer_norm")
        _ffn(out, hf, weights, ct2)
    _layer_norm(out, "model.encoder.layer_norm", weights, "encoder/layer_norm")
    out["model.decoder.embed_tokens.weight"] = weights.get("decoder/embeddings/weight")
    out["model.decoder.embed_positions.weight"] = weights.get("decoder/position_encodings/encodings")
    for i in range(layer_count(weights, "decoder")):
        hf, ct2 = f"model.decoder.layers.{i}", f"decoder/layer_{i}"
        _self_attention(out, f"{hf}.self_attn", weights, f"{ct2}/self_attention")
        _layer_norm(out, f"{hf}.self_attn_layer_norm", weights, f"{ct2}/self_attention/layer_norm")
        _cross_attention(out, f"{hf}.encoder_attn", weights, f"{ct2}/attention")
        _layer_norm(out, f"{hf}.encoder_attn_layer_norm", weights, f"{ct2}/attention/layer_norm")
        _ffn(out, hf, weights, ct2)
    _layer_norm(out, "model.decoder.layer_norm", weights, "decoder/layer_norm")
    out["proj_out.weight"] = out["model.decoder.embed_tokens.weight"]
    return out


def vocabulary(ct2_dir: Path) -> list[str]:
    """Tokens by id (vocabulary.txt, or the older vocabulary.json)."""
    text_file, json_file = ct2_dir / "vocabulary.txt", ct2_dir / "vocabulary.json"
    if text_file.is_file():
        return text_file.read_text(encoding="utf-8").rstrip("\n").split("\n")
    return list(json.loads(json_file.read_text(encoding="utf-8")))


def whisper_config(weights: Ct2Weights, tokens: list[str]) -> Any:
    from transformers import WhisperConfig

    embeddings = weights.variables["decoder/embeddings/weight"]
    enc_ffn = weights.variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]
    dec_ffn = weights.variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]
    return WhisperConfig(
        vocab_size=embeddings.shape[0],
        num_mel_bins=weights.variables["encoder/conv1/weight"].shape[1],
        d_model=embeddings.shape[1],
        encoder_layers=layer_count(weights, "encoder"),
        decoder_layers=layer_count(weights, "decoder"),
        encoder_attention_heads=weights.scalar("encoder/num_heads"),
        decoder_attention_heads=weights.scalar("decoder/num_heads"),
        encoder_ffn_dim=enc_ffn,
        decoder_ffn_dim=dec_ffn,
        max_source_positions=weights.variables["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=weights.variables["decoder/position_encodings/encodings"].shape[0],
        pad_token_id=tokens.index(EOT),
        bos_token_id=tokens.index(EOT),
        eos_token_id=tokens.index(EOT),
        decoder_start_token_id=tokens.index(SOT),
        tie_word_embeddings=True,
    )


def generation_config(ct2_config: dict[str, Any], tokens: list[str], hf_config: Any) -> Any:
    """What the CTranslate2 converter reads back: suppressed tokens, alignment heads, language ids."""
    from transformers import GenerationConfig

    return GenerationConfig(
        decoder_start_token_id=hf_config.decoder_start_token_id,
        eos_token_id=hf_config.eos_token_id,
        pad_token_id=hf_config.pad_token_id,
        suppress_tokens=list(ct2_config.get("suppress_ids") or []),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin") or []),
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads") or []],
        lang_to_id={tokens[i]: i for i in ct2_config.get("lang_ids") or []},
        task_to_id={"transcribe": tokens.index("<|transcribe|>"), "translate": tokens.index("<|translate|>")},
        no_timestamps_token_id=tokens.index("<|notimestamps|>"),
        is_multilingual=bool(ct2_config.get("lang_ids")),
        max_length=hf_config.max_target_positions,
    )


def load_hf_whisper(ct2_dir: Path) -> tuple[Any, list[str]]:
    """(WhisperForConditionalGeneration in float32, tokens by id) from a faster-whisper model directory.

    Raises ValueError if a parameter of the HF model has no CTranslate2 counterpart or the other way round.
    """
    import torch
    from transformers import WhisperForConditionalGeneration

    ct2_dir = Path(ct2_dir)
    weights = read_ct2_weights(ct2_dir / "model.bin")
    tokens = vocabulary(ct2_dir)
    config = whisper_config(weights, tokens)
    model = WhisperForConditionalGeneration(config)
    state = {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in hf_state_dict(weights).items()}
    expected = set(model.state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ValueError(f"conversion of {ct2_dir}: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    model.load_state_dict(state, strict=True)
    model.tie_weights()
    ct2_config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
    model.generation_config = generation_config(ct2_config, tokens, config)
    return model.eval(), tokens
