"""`hotline adapt lid`: train and measure the dialect classifier of asr/lid.py.

Examples are manifest clips labelled by their `lang` (zh -> mandarin, minnan, hakka, mindong);
Mandarin speech can be synthesized with the project's TTS (`synthesize_mandarin`), since the dialect
corpus has none. The classifier is a multinomial logistic regression fitted with L-BFGS.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adapt.data import Example, load_audio, read_examples
from asr.lid import DialectClassifier, lid_features

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def label_of(lang: str) -> str:
    from asr.evaluate import DIALECT_OF_LANG

    return DIALECT_OF_LANG.get(lang, lang)


@dataclass(frozen=True)
class LabelledFeatures:
    features: np.ndarray  # (n, dims)
    labels: list[str]


def load_whisper(model_dir: Path, threads: int = 2) -> Any:
    from faster_whisper import WhisperModel

    return WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)


def featurize(whisper_model: Any, examples: Sequence[Example], seconds: float, log: Log = _stderr) -> LabelledFeatures:
    started = time.monotonic()
    rows = []
    for i, example in enumerate(examples, start=1):
        rows.append(lid_features(whisper_model, load_audio(example.path), seconds=seconds))
        if i % 200 == 0:
            log(f"features of {i}/{len(examples)} clips ({time.monotonic() - started:.0f} s)")
    return LabelledFeatures(np.stack(rows), [label_of(e.lang) for e in examples])


def read_all(manifests: Sequence[Path], langs: Sequence[str] = (), per_lang: int | None = None) -> list[Example]:
    """The clips of the manifests (of `langs` only, when given), at most `per_lang` of each lang."""
    chosen: list[Example] = []
    counts: dict[str, int] = {}
    for manifest in manifests:
        for example in read_examples(manifest, langs=langs):
            counts[example.lang] = counts.get(example.lang, 0) + 1
            if per_lang is None or counts[example.lang] <= per_lang:
                chosen.append(example)
    return chosen


def fit(data: LabelledFeatures, *, seconds: float, l2: float = 1e-3, iterations: int = 200) -> DialectClassifier:
    """Multinomial logistic regression on standardized features, classes weighted to equal total weight."""
    import torch

    classes = tuple(sorted(set(data.labels)))
    mean = data.features.mean(axis=0)
    scale = data.features.std(axis=0) + 1e-6
    x = torch.from_numpy(((data.features - mean) / scale).astype(np.float32))
    y = torch.tensor([classes.index(label) for label in data.labels])
    counts = torch.bincount(y, minlength=len(classes)).float()
    class_weight = counts.sum() / (len(classes) * counts)
    weight = torch.zeros(x.shape[1], len(classes), requires_grad=True)
    bias = torch.zeros(len(classes), requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = torch.nn.functional.cross_entropy(x @ weight + bias, y, weight=class_weight) + l2 * weight.pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    return DialectClassifier(classes, mean.astype(np.float32), scale.astype(np.float32),
                             weight.detach().numpy(), bias.detach().numpy(), seconds)


def confusion(classifier: DialectClassifier, data: LabelledFeatures) -> dict[str, Any]:
    """Accuracy, per-class recall and the confusion matrix (rows: true class, columns: predicted)."""
    predicted = classifier.predict(data.features)
    names = sorted(set(classifier.classes) | set(data.labels))
    matrix = {t: {p: 0 for p in names} for t in names}
    for truth, guess in zip(data.labels, predicted, strict=True):
        matrix[truth][guess] += 1
    totals = {t: sum(row.values()) for t, row in matrix.items()}
    return {
        "n": len(data.labels),
        "accuracy": round(sum(t == p for t, p in zip(data.labels, predicted, strict=True)) / max(1, len(data.labels)), 4),
        "recall": {t: round(matrix[t][t] / totals[t], 4) for t in names if totals[t]},
        "confusion": {t: row for t, row in matrix.items() if totals[t]},
    }


def routing(identifier: Any, transcriber: Any, examples: Sequence[Example], log: Log = _stderr) -> dict[str, Any]:
    """Where the hotline sends `auto` calls that begin with these clips, as it would (asr.lid.AutoDialect
    on the default model's transcript): the confusion matrix of routes. A variety the classifier does
    not know is routed right when it stays on the default model (mandarin)."""
    known = set(identifier.classifier.classes)
    matrix: dict[str, dict[str, int]] = {}
    right = 0
    for i, example in enumerate(examples, start=1):
        pcm = np.round(load_audio(example.path) * 32767).astype(np.int16)
        truth = label_of(example.lang)
        route = identifier.dialect_of(pcm, transcriber.transcribe(pcm, dialect="auto")) or "mandarin"
        matrix.setdefault(truth, {})[route] = matrix.get(truth, {}).get(route, 0) + 1
        right += route == (truth if truth in known else "mandarin")
        if i % 100 == 0:
            log(f"routed {i}/{len(examples)} clips")
    names = sorted(known | set(matrix))
    return {"n": len(examples), "accuracy": round(right / max(1, len(examples)), 4),
            "confusion": {t: {n: row.get(n, 0) for n in names} for t, row in sorted(matrix.items())}}


def print_confusion(report: dict[str, Any], log: Log = _stderr) -> None:
    names = list(next(iter(report["confusion"].values())))
    log("true \\ predicted " + " ".join(f"{n:>9}" for n in names))
    for truth, row in report["confusion"].items():
        log(f"{truth:>17} " + " ".join(f"{row[n]:>9}" for n in names))


def synthesize_mandarin(out_dir: Path, sentences: Sequence[str], *, test_every: int = 4, log: Log = _stderr) -> dict[str, Path]:
    """Speak `sentences` with the project's TTS into `out_dir` (16 kHz WAV) and write train.jsonl and
    test.jsonl (every `test_every`-th sentence) with lang zh."""
    from core.audio import AudioFormat, Codec, resample
    from core.wav import write_wav
    from tts.loader import load_synthesizer

    synthesizer = load_synthesizer("auto")
    out_dir.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for i, sentence in enumerate(sentences):
        name = f"mandarin-{i:04d}.wav"
        pcm = resample(synthesizer.synthesize(sentence), synthesizer.sample_rate, 16000)
        write_wav(out_dir / name, pcm.astype("<i2").tobytes(), AudioFormat(Codec.PCM16, 16000))
        split = "test" if i % test_every == test_every - 1 else "train"
        lines[split].append(json.dumps({"audio": name, "text": sentence, "lang": "zh"}, ensure_ascii=False))
    paths = {}
    for split, rows in lines.items():
        paths[split] = out_dir / f"{split}.jsonl"
        paths[split].write_text("\n".join(rows) + "\n", encoding="utf-8")
    log(f"synthesized {len(sentences)} Mandarin sentences into {out_dir}")
    return paths


def kb_sentences(limit: int) -> list[str]:
    """Sentences of the demo knowledge base (what callers and the bot say about a carrier)."""
    import re

    from kb.seed import DEMO_DIR

    found: list[str] = []
    for doc in sorted(DEMO_DIR.glob("*.md")):
        body = doc.read_text(encoding="utf-8").split("---", 2)[-1]
        for piece in re.split(r"[。！？\n]", body):
            piece = re.sub(r"[#*`>|\-\[\]()]", "", piece).strip()
            if 8 <= len(piece) <= 40 and re.search(r"[\u4e00-\u9fff]", piece) and piece not in found:
                found.append(piece)
    return found[:limit]
