"""The HF Whisper model run the way faster-whisper runs it: the encoder on a window shorter than 30 s
(the utterance plus a margin of silence, as `asr.whisper.WhisperTranscriber` encodes), greedy decoding."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812


def _cache_argument(model: Any) -> str:
    """`cache` in transformers 5.x, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.model.decoder.forward).parameters else "past_key_values"


def encode(model: Any, features: torch.Tensor) -> torch.Tensor:
    """Encoder states (batch, frames/2, d_model) of log-mel `features` (batch, n_mels, frames) of any length
    up to 30 s; HF's own encoder insists on exactly 30 s, CTranslate2 takes the first positions."""
    encoder = model.model.encoder
    hidden = F.gelu(encoder.conv1(features))
    hidden = F.gelu(encoder.conv2(hidden)).permute(0, 2, 1)
    hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
    for layer in encoder.layers:
        out = layer(hidden, attention_mask=None)
        hidden = out[0] if isinstance(out, tuple) else out
    return encoder.layer_norm(hidden)


def token_logits(model: Any, encoder_states: torch.Tensor, decoder_input_ids: torch.Tensor) -> torch.Tensor:
    """Next-token logits at every decoder position (batch, tokens, vocab)."""
    decoded = model.model.decoder(input_ids=decoder_input_ids, encoder_hidden_states=encoder_states,
                                  use_cache=False)
    return model.proj_out(decoded.last_hidden_state)


@torch.no_grad()
def greedy_decode(model: Any, encoder_states: torch.Tensor, prompt: Sequence[int], *, end: int,
                  max_new_tokens: int, suppress: Sequence[int] = ()) -> list[list[int]]:
    """Greedy continuation of `prompt` for each item of the batch, without the prompt and the end token."""
    batch = encoder_states.shape[0]
    ids = torch.tensor([list(prompt)] * batch, device=encoder_states.device)
    blocked = torch.tensor(list(suppress), dtype=torch.long, device=encoder_states.device)
    done = torch.zeros(batch, dtype=torch.bool, device=encoder_states.device)
    cache_name = _cache_argument(model)
    past = None
    step_input = ids
    for _ in range(max_new_tokens):
        out = model.model.decoder(input_ids=step_input, encoder_hidden_states=encoder_states,
                                  use_cache=True, **{cache_name: past})
        past = getattr(out, cache_name)
        logits = model.proj_out(out.last_hidden_state[:, -1])
        if blocked.numel():
            logits[:, blocked] = float("-inf")
        following = logits.argmax(-1)
        following = torch.where(done, torch.full_like(following, end), following)
        ids = torch.cat([ids, following[:, None]], dim=1)
        done |= following == end
        if bool(done.all()):
            break
        step_input = following[:, None]
    results = []
    for row in ids[:, len(prompt):].tolist():
        results.append(row[: row.index(end)] if end in row else row)
    return results
