"""`hotline adapt asr`: fine-tune Whisper on one dialect, with a bounded, resumable run.

The model is the faster-whisper model converted to Hugging Face (adapt.convert); features are
faster-whisper's own, computed on the window the recognizer encodes when it serves a call (the
utterance plus `margin_s` of silence). With the encoder frozen (the default: on a CPU the decoder is
what a short run can move), its states are computed once per clip and the steps only run the decoder.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from adapt.base import AdaptOptions, AdaptResult, EpochReport
from adapt.convert import load_hf_whisper
from adapt.data import (
    Example,
    Prompt,
    load_audio,
    load_tokenizer,
    log_mel,
    read_examples,
    task_prompt,
    text_tokens,
    window_frames,
)
from adapt.torch_whisper import encode, greedy_decode, token_logits
from asr.cer import CerCount, cer_count

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"  # the trained weights of the epoch with the lowest dev CER so far
TOKENS_PER_SECOND = 12.0  # the recognizer's cap on a decode, as in asr.whisper.DecodeOptions
ATTENTION_AND_FFN = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Sample:
    """One clip ready for steps: its window's features, or its cached encoder states."""

    frames: int
    tokens: list[int]  # the text's tokens
    text: str
    seconds: float
    inputs: torch.Tensor  # (n_mels, frames) features, or (frames/2, d_model) encoder states in float16


@dataclass
class Progress:
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches done in the current epoch
    step: int = 0
    dev_cer_before: float | None = None
    history: list[dict[str, Any]] | None = None
    best_dev_cer: float | None = None  # of the weights in BEST
    best_step: int | None = None


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


def dialect_examples(manifest: Path, dialect: str, limit: int | None) -> list[Example]:
    """The clips of `dialect` (manifest `lang`); with a `limit`, that many spread evenly over the manifest
    (whose clips are grouped by source)."""
    from asr.evaluate import DIALECT_OF_LANG

    examples = read_examples(manifest)
    chosen = [e for e in examples if DIALECT_OF_LANG.get(e.lang, e.lang) == dialect]
    if not chosen:
        raise ValueError(f"{manifest}: no clip has lang {dialect!r}")
    if limit is None or limit >= len(chosen):
        return chosen
    return [chosen[i * len(chosen) // limit] for i in range(limit)]


def language_of(dialect: str) -> str:
    from asr.dialects import registry

    found = registry().get(dialect)
    return (found.language if found is not None else None) or "zh"


def trainable_model(model: Any, options: AdaptOptions) -> Any:
    """The model to train: LoRA adapters on the decoder's (and, asked, the encoder's) linear layers, or
    every weight of those stacks (full fine-tuning). The other weights are frozen."""
    stacks = ("model.decoder.", "model.encoder.") if options.tune_encoder else ("model.decoder.",)
    model.requires_grad_(False)
    if options.lora:
        from peft import LoraConfig, get_peft_model

        targets = [name for name, module in model.named_modules()
                   if name.startswith(stacks) and name.rsplit(".", 1)[-1] in ATTENTION_AND_FFN
                   and isinstance(module, torch.nn.Linear)]
        config = LoraConfig(r=options.rank, lora_alpha=2 * options.rank, lora_dropout=0.05, target_modules=targets)
        return get_peft_model(model, config)
    for name, parameter in model.named_parameters():
        if name.startswith(stacks) and "embed_positions" not in name:
            parameter.requires_grad_(True)
    return model


def _windows(examples: Sequence[Example], options: AdaptOptions, extractor: Any, tokenizer: Any,
             max_tokens: int) -> list[tuple[Example, np.ndarray, list[int], float]]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, options.threads)) as pool:  # decoding MP3 releases the GIL
        audios = list(pool.map(load_audio, [e.path for e in examples]))
    rows = []
    for example, audio in zip(examples, audios, strict=True):
        frames = window_frames(len(audio), margin_s=options.margin_s, hop_length=extractor.hop_length)
        rows.append((example, log_mel(audio, frames, extractor), text_tokens(tokenizer, example.text, max_tokens=max_tokens),
                     len(audio) / 16000))
    return rows


class StateEncoder:
    """Encoder states of a frozen encoder. On a CPU the CTranslate2 model computes them, int8 as the
    recognizer serves (several times faster than torch's float32 encoder); on a GPU the torch model."""

    def __init__(self, model: Any, options: AdaptOptions, device: torch.device) -> None:
        self.model, self.device = model, device
        self.ct2 = None
        if device.type == "cpu":
            import ctranslate2

            self.ct2 = ctranslate2.models.Whisper(str(options.base), device="cpu", compute_type="int8",
                                                  intra_threads=options.threads)

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        if self.ct2 is not None:
            import ctranslate2

            encoded = self.ct2.encode(ctranslate2.StorageView.from_array(features.numpy()))
            return torch.from_numpy(np.array(encoded))
        with torch.no_grad():
            return encode(self.model, features.to(self.device)).cpu()


def _cache_file(examples: Sequence[Example], options: AdaptOptions, label: str) -> Path:
    import hashlib

    key = json.dumps([str(options.base), options.margin_s, options.device.split(":")[0],
                      [(str(e.path), e.text) for e in examples]], ensure_ascii=False)
    return options.out / f"cache-{label}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def prepare_samples(examples: Sequence[Example], model: Any, options: AdaptOptions, tokenizer: Any,
                    device: torch.device, log: Log, label: str) -> list[Sample]:
    """Features of every clip, and with a frozen encoder its states (computed once, kept in --out)."""
    from faster_whisper.feature_extractor import FeatureExtractor

    cache = _cache_file(examples, options, label)
    if not options.tune_encoder and cache.is_file():
        samples = [Sample(**row) for row in torch.load(cache, weights_only=False)]
        log(f"{label}: {len(samples)} clips, encoder states from {cache.name}")
        return samples
    extractor = FeatureExtractor(feature_size=model.config.num_mel_bins)
    started = time.monotonic()
    rows = _windows(examples, options, extractor, tokenizer, model.config.max_target_positions - 8)
    samples = [Sample(f.shape[1], tokens, e.text, seconds, torch.from_numpy(f)) for e, f, tokens, seconds in rows]
    if not options.tune_encoder:
        states = StateEncoder(model, options, device)
        by_frames: dict[int, list[Sample]] = defaultdict(list)
        for sample in samples:
            by_frames[sample.frames].append(sample)
        for group in by_frames.values():
            for start in range(0, len(group), 8):
                chunk = group[start : start + 8]
                for sample, state in zip(chunk, states(torch.stack([s.inputs for s in chunk])), strict=True):
                    sample.inputs = state.to(torch.float16)
        torch.save([asdict(s) for s in samples], cache)
    log(f"{label}: {len(samples)} clips, {sum(s.seconds for s in samples) / 60:.1f} min of audio prepared "
        f"in {time.monotonic() - started:.0f} s")
    return samples


def batches(samples: Sequence[Sample], batch_size: int, seed: int) -> list[list[int]]:
    """Indices of samples in batches of one window length, in an order fixed by `seed`."""
    rng = random.Random(seed)
    by_frames: dict[int, list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        by_frames[sample.frames].append(index)
    out: list[list[int]] = []
    for frames in sorted(by_frames):
        group = by_frames[frames]
        rng.shuffle(group)
        out.extend(group[i : i + batch_size] for i in range(0, len(group), batch_size))
    rng.shuffle(out)
    return out


def encoder_states(model: Any, samples: Sequence[Sample], options: AdaptOptions, device: torch.device) -> torch.Tensor:
    stacked = torch.stack([s.inputs for s in samples]).to(device)
    if options.tune_encoder:
        return encode(model, stacked)
    return stacked.float()


def batch_loss(model: Any, samples: Sequence[Sample], prompt: Prompt, options: AdaptOptions,
               device: torch.device) -> torch.Tensor:
    """Cross-entropy of the text tokens and the end token, after the task prompt."""
    sequences = [[*prompt.tokens, *s.tokens, prompt.end] for s in samples]
    width = max(len(seq) for seq in sequences) - 1
    inputs = torch.full((len(samples), width), prompt.end, dtype=torch.long)
    labels = torch.full((len(samples), width), -100, dtype=torch.long)
    for row, seq in enumerate(sequences):
        inputs[row, : len(seq) - 1] = torch.tensor(seq[:-1])
        targets = torch.tensor(seq[1:])
        targets[: len(prompt.tokens) - 1] = -100  # the language and task tokens are given, not learnt
        labels[row, : len(seq) - 1] = targets
    logits = token_logits(model, encoder_states(model, samples, options, device), inputs.to(device))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.to(device).reshape(-1), ignore_index=-100)


def decode_samples(model: Any, samples: Sequence[Sample], prompt: Prompt, tokenizer: Any, options: AdaptOptions,
                   device: torch.device, suppress: Sequence[int]) -> list[str]:
    """Greedy transcripts (Simplified) of the samples, batched by window."""
    from asr.evaluate import _simplified

    texts = [""] * len(samples)
    was_training = model.training
    model.eval()
    for indices in batches(samples, 16, seed=0):
        chunk = [samples[i] for i in indices]
        cap = max(8, math.ceil(TOKENS_PER_SECOND * max(s.seconds for s in chunk)))
        with torch.no_grad():
            states = encoder_states(model, chunk, options, device)
            ids = greedy_decode(model, states, prompt.tokens, end=prompt.end, max_new_tokens=cap, suppress=suppress)
        for index, tokens in zip(indices, ids, strict=True):
            texts[index] = _simplified(tokenizer.decode([t for t in tokens if t < prompt.end]))
    model.train(was_training)
    return texts


def dev_cer(model: Any, samples: Sequence[Sample], prompt: Prompt, tokenizer: Any, options: AdaptOptions,
            device: torch.device, suppress: Sequence[int]) -> float | None:
    if not samples:
        return None
    hypotheses = decode_samples(model, samples, prompt, tokenizer, options, device, suppress)
    counts = [cer_count(s.text, h) for s, h in zip(samples, hypotheses, strict=True)]
    return round(CerCount(sum(c.errors for c in counts), sum(c.reference_chars for c in counts)).rate, 4)


def _trainable_state(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}


def _load_trainable(model: Any, state: dict[str, torch.Tensor]) -> None:
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            parameters[name].copy_(value)


def _keep_if_best(model: Any, progress: Progress, cer: float | None, folder: Path) -> None:
    """Save the trained weights when `cer` is the lowest dev CER yet: a later epoch may overfit."""
    if cer is None or (progress.best_dev_cer is not None and cer >= progress.best_dev_cer):
        return
    tmp = folder / (BEST + ".partial")
    torch.save(_trainable_state(model), tmp)
    os.replace(tmp, folder / BEST)
    progress.best_dev_cer, progress.best_step = cer, progress.step


def _restore_best(model: Any, progress: Progress, last_cer: float | None, folder: Path, log: Log) -> float | None:
    """Put back the best epoch's weights when the last ones are worse on dev; the dev CER exported."""
    best = progress.best_dev_cer
    if best is None or last_cer is None or best >= last_cer or not (folder / BEST).is_file():
        return last_cer
    _load_trainable(model, torch.load(folder / BEST, map_location="cpu", weights_only=True))
    log(f"exporting the weights of step {progress.best_step} (dev CER {best:.1%}), not the last ({last_cer:.1%})")
    return best


def _run_key(options: AdaptOptions) -> dict[str, Any]:
    return {"dialect": options.dialect, "lora": options.lora, "rank": options.rank,
            "tune_encoder": options.tune_encoder, "base": str(options.base)}


def save_checkpoint(path: Path, model: Any, optimizer: Any, progress: Progress, options: AdaptOptions) -> None:
    tmp = path.with_suffix(".partial")
    torch.save({"key": _run_key(options), "trainable": _trainable_state(model), "optimizer": optimizer.state_dict(),
                "progress": asdict(progress)}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: Any, optimizer: Any, options: AdaptOptions, log: Log) -> Progress | None:
    if not path.is_file():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved["key"] != _run_key(options):
        raise ValueError(f"{path} belongs to another run ({saved['key']}); use another --out or delete it")
    _load_trainable(model, saved["trainable"])
    optimizer.load_state_dict(saved["optimizer"])
    progress = Progress(**saved["progress"])
    log(f"resuming from {path}: epoch {progress.epoch + 1}, batch {progress.batch}, step {progress.step}")
    return progress


def adapt_asr(options: AdaptOptions, log: Log = _stderr) -> AdaptResult:
    """Fine-tune, checkpoint, export to CTranslate2 and register; see `hotline adapt asr`."""
    started = time.monotonic()
    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    device = resolve_device(options.device)
    options.out.mkdir(parents=True, exist_ok=True)
    model, _tokens = load_hf_whisper(options.base)
    tokenizer = load_tokenizer(options.base)
    prompt = task_prompt(tokenizer, language_of(options.dialect))
    suppress = list(json.loads((options.base / "config.json").read_text()).get("suppress_ids") or [])
    model.to(device)
    train = prepare_samples(dialect_examples(options.train, options.dialect, options.limit), model, options,
                            tokenizer, device, log, "train")
    dev = (prepare_samples(dialect_examples(options.dev, options.dialect, options.dev_limit), model, options,
                           tokenizer, device, log, "dev") if options.dev else [])
    trained = trainable_model(model, options)
    parameters = [p for p in trained.parameters() if p.requires_grad]
    log(f"training {sum(p.numel() for p in parameters):,} parameters ({'LoRA rank ' + str(options.rank) if options.lora else 'full'}"
        f", encoder {'trained' if options.tune_encoder else 'frozen'}) on {device} with {options.threads} threads")
    rate = options.learning_rate or (1e-3 if options.lora else 1e-5)
    optimizer = torch.optim.AdamW(parameters, lr=rate, weight_decay=0.01)
    checkpoint = options.out / CHECKPOINT
    progress = load_checkpoint(checkpoint, trained, optimizer, options, log) or Progress(history=[])
    if progress.step == 0 and progress.dev_cer_before is None and dev:
        progress.dev_cer_before = dev_cer(model, dev, prompt, tokenizer, options, device, suppress)
        log(f"dev CER before adaptation: {progress.dev_cer_before:.1%}")
    deadline = started + options.max_minutes * 60 if options.max_minutes is not None else math.inf
    train_seconds, stopped_by_time = _train(trained, model, train, dev, prompt, tokenizer, optimizer, progress,
                                            options, device, suppress, checkpoint, deadline, log)
    history = tuple(EpochReport(**h) for h in progress.history or [])
    dev_cer_after = history[-1].dev_cer if history else progress.dev_cer_before
    if stopped_by_time and dev:
        dev_cer_after = dev_cer(model, dev, prompt, tokenizer, options, device, suppress)
        log(f"dev CER at step {progress.step}: {dev_cer_after:.1%}")
    dev_cer_after = _restore_best(trained, progress, dev_cer_after, options.out, log)
    trained.eval()
    model_dir = None
    if options.export:
        from adapt.export import export_ct2, merged

        model_dir = export_ct2(merged(trained, options.lora).to("cpu"), options.base, options.out / "ct2",
                               quantization=options.quantization, log=log)
    if model_dir is not None and options.registry is not None:
        from adapt.registry import register_dialect_model

        register_dialect_model(options.registry, options.dialect, model_dir, beam_size=options.beam_size)
        log(f"registered {model_dir} as the model of {options.dialect!r} in {options.registry}")
    return AdaptResult(
        dialect=options.dialect, model_dir=model_dir, registry=options.registry if model_dir else None,
        steps=progress.step, epochs_done=round(progress.epoch + progress.batch / max(1, len(batches(train, options.batch_size, 0))), 2),
        train_clips=len(train), train_seconds=round(train_seconds, 1), total_seconds=round(time.monotonic() - started, 1),
        device=str(device), threads=options.threads, dev_cer_before=progress.dev_cer_before,
        dev_cer_after=dev_cer_after, stopped_by_time=stopped_by_time,
        history=history,
    )


def _train(trained: Any, model: Any, train: list[Sample], dev: list[Sample], prompt: Prompt, tokenizer: Any,
           optimizer: Any, progress: Progress, options: AdaptOptions, device: torch.device, suppress: list[int],
           checkpoint: Path, deadline: float, log: Log) -> tuple[float, bool]:
    """Steps until the epochs are done or the `deadline` (monotonic clock; --max-minutes counts from the
    start of the command) passes; returns (seconds spent, stopped by time)."""
    began = time.monotonic()
    history = progress.history if progress.history is not None else []
    progress.history = history
    while progress.epoch < options.epochs:
        order = batches(train, options.batch_size, seed=options.seed + progress.epoch)
        trained.train()
        epoch_began, losses = time.monotonic(), []
        for indices in order[progress.batch :]:
            loss = batch_loss(model, [train[i] for i in indices], prompt, options, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in trained.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            progress.batch += 1
            progress.step += 1
            losses.append(loss.item())
            if progress.step % 10 == 0 or progress.batch == len(order):
                log(f"epoch {progress.epoch + 1} step {progress.step} batch {progress.batch}/{len(order)} "
                    f"loss {np.mean(losses[-10:]):.3f} ({time.monotonic() - began:.0f} s)")
            if progress.step % options.save_every == 0:
                save_checkpoint(checkpoint, trained, optimizer, progress, options)
            if time.monotonic() >= deadline:
                log(f"--max-minutes {options.max_minutes} reached after step {progress.step}: saving and exporting")
                save_checkpoint(checkpoint, trained, optimizer, progress, options)
                return time.monotonic() - began, True
        cer = dev_cer(model, dev, prompt, tokenizer, options, device, suppress)
        history.append(asdict(EpochReport(progress.epoch + 1, progress.step, round(float(np.mean(losses)), 4) if losses else math.nan,
                                          cer, round(time.monotonic() - epoch_began, 1))))
        log(f"epoch {progress.epoch + 1} done: step {progress.step}, loss {history[-1]['loss']}, "
            f"dev CER {'-' if cer is None else f'{cer:.1%}'}")
        _keep_if_best(trained, progress, cer, checkpoint.parent)
        progress.epoch += 1
        progress.batch = 0
        save_checkpoint(checkpoint, trained, optimizer, progress, options)
    return time.monotonic() - began, False
