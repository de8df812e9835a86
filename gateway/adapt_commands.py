"""`hotline adapt asr` and `hotline adapt lid`: thin wrappers over the adapt package (torch is imported
only when one of them runs)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.bundled import resolve
from gateway.settings import Settings


def add_adapt_commands(commands: Any) -> None:
    adapt = commands.add_parser("adapt", help="adapt a model to data; prints a JSON summary last")
    targets = adapt.add_subparsers(dest="target", required=True)
    asr = targets.add_parser("asr", help="fine-tune the recognizer on a dialect, export it for faster-whisper, register it")
    asr.add_argument("--dialect", required=True, help="registry name of the dialect (e.g. minnan)")
    asr.add_argument("--train", type=Path, required=True, help="JSONL: audio, text, lang (clips of other langs are skipped)")
    asr.add_argument("--dev", type=Path, help="JSONL measured (greedy CER) before training and after each epoch")
    asr.add_argument("--out", type=Path, help="work folder: checkpoint.pt and the exported model ct2/ "
                                              "(default: DATA_DIR/adapt/DIALECT)")
    asr.add_argument("--epochs", type=int, default=5)
    asr.add_argument("--max-minutes", type=float, help="minutes from the start (data preparation included) after which the "
                     "current step is the last: it saves, exports and registers")
    mode = asr.add_mutually_exclusive_group()
    mode.add_argument("--lora", dest="lora", action="store_true", default=True, help="LoRA adapters (default)")
    mode.add_argument("--full", dest="lora", action="store_false", help="full fine-tuning of the trained part")
    asr.add_argument("--rank", type=int, default=16, help="LoRA rank")
    asr.add_argument("--tune-encoder", action="store_true",
                     help="train the encoder too (default: frozen, its states cached once per clip)")
    asr.add_argument("--lr", type=float, help="learning rate (default 1e-3 with LoRA, 1e-5 full)")
    asr.add_argument("--batch-size", type=int, default=8)
    asr.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    asr.add_argument("--threads", type=int, default=2, help="CPU threads of torch")
    asr.add_argument("--base", help="faster-whisper model to start from (default: HOTLINE_ASR__MODEL)")
    asr.add_argument("--registry", type=Path, help="dialect registry file to register the model in "
                                                   "(default: HOTLINE_ASR__DIALECTS_FILE, else DATA_DIR/dialects.yaml)")
    asr.add_argument("--no-register", action="store_true", help="export only")
    asr.add_argument("--limit", type=int, help="at most N training clips")
    asr.add_argument("--dev-limit", type=int, help="at most N dev clips")
    asr.add_argument("--save-every", type=int, default=50, help="steps between checkpoints")
    asr.add_argument("--beam-size", type=int, default=5, help="beam size registered for the dialect")
    asr.add_argument("--quantization", default="int8", help="CTranslate2 weights of the export (int8, float16, float32)")

    lid = targets.add_parser("lid", help="dialect identification for `auto` calls: train, or --eval a trained one")
    lid.add_argument("--train", type=Path, action="append", default=[], help="JSONL with lang labels (repeatable)")
    lid.add_argument("--eval", type=Path, action="append", default=[], help="JSONL to measure on (repeatable)")
    lid.add_argument("--lang", action="append", default=[], help="only clips of this lang (repeatable)")
    lid.add_argument("--per-lang", type=int, help="at most N clips of each lang from each of --train and --eval")
    lid.add_argument("--out", type=Path, help="the classifier file to write (training) or read (--eval)")
    lid.add_argument("--seconds", type=float, default=4.0, help="how much of the start of a call it hears")
    lid.add_argument("--base", help="faster-whisper model whose encoder it listens with (default: HOTLINE_ASR__MODEL)")
    lid.add_argument("--synthesize-mandarin", type=Path, metavar="DIR",
                     help="first speak Mandarin sentences with the project's TTS into DIR (train.jsonl, test.jsonl)")
    lid.add_argument("--sentences", type=int, default=200, help="how many Mandarin sentences to synthesize")
    lid.add_argument("--routing", action="store_true",
                     help="with --eval: also where `auto` calls would go (the thresholds of HOTLINE_ASR__LID_*)")


def run_adapt(args: argparse.Namespace, settings: Settings) -> int:
    if args.target == "asr":
        return adapt_asr_command(args, settings)
    return adapt_lid_command(args, settings)


def _base(args: argparse.Namespace, settings: Settings) -> Path:
    return resolve(args.base or settings.asr.model, settings.model_dir)


def adapt_asr_command(args: argparse.Namespace, settings: Settings) -> int:
    from adapt.base import AdaptOptions
    from adapt.train import adapt_asr

    registry = None if args.no_register else (args.registry or settings.asr.dialects_file
                                              or settings.data_dir / "dialects.yaml")
    options = AdaptOptions(
        dialect=args.dialect.strip().lower(), train=args.train, dev=args.dev,
        out=args.out or settings.data_dir / "adapt" / args.dialect, base=_base(args, settings), registry=registry,
        epochs=args.epochs, max_minutes=args.max_minutes, lora=args.lora, rank=args.rank,
        tune_encoder=args.tune_encoder, learning_rate=args.lr, batch_size=args.batch_size, device=args.device,
        threads=args.threads, limit=args.limit, dev_limit=args.dev_limit, save_every=args.save_every,
        beam_size=args.beam_size, quantization=args.quantization,
    )
    try:
        result = adapt_asr(options)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"hotline adapt asr: {exc}", file=sys.stderr)
        return 2
    if result.registry is not None and settings.asr.dialects_file != result.registry:
        print(f"serve it with HOTLINE_ASR__DIALECTS_FILE={result.registry}", file=sys.stderr)
    print(json.dumps(asdict(result), ensure_ascii=False, default=str))
    return 0


def _routing(examples: list[Any], classifier: Any, settings: Settings) -> dict[str, Any]:
    from adapt import lid
    from gateway.services import dialect_identifier, load_asr

    transcriber, _ = load_asr(settings)
    return lid.routing(dialect_identifier(settings, transcriber, classifier), transcriber, examples)


def adapt_lid_command(args: argparse.Namespace, settings: Settings) -> int:
    from adapt import lid
    from asr.lid import DialectClassifier

    if args.out is None:
        print("hotline adapt lid: --out FILE is needed (the classifier to write, or with --eval to read)", file=sys.stderr)
        return 2
    train = list(args.train)
    evaluate = list(args.eval)
    if args.synthesize_mandarin is not None:
        made = lid.synthesize_mandarin(args.synthesize_mandarin, lid.kb_sentences(args.sentences))
        train.append(made["train"])
        evaluate.append(made["test"])
    if not train and not evaluate:
        print("hotline adapt lid: give --train and/or --eval manifests", file=sys.stderr)
        return 2
    whisper = lid.load_whisper(_base(args, settings))
    summary: dict[str, Any] = {"classifier": str(args.out), "seconds": args.seconds}
    if train:
        data = lid.featurize(whisper, lid.read_all(train, args.lang, args.per_lang), args.seconds)
        classifier = lid.fit(data, seconds=args.seconds)
        classifier.save(args.out)
        summary["train"] = lid.confusion(classifier, data)
    else:
        classifier = DialectClassifier.load(args.out)
    if evaluate:
        report = lid.confusion(classifier, lid.featurize(whisper, lid.read_all(evaluate, args.lang, args.per_lang), classifier.seconds))
        lid.print_confusion(report)
        summary["eval"] = report
        if args.routing:
            summary["routing"] = _routing(lid.read_all(evaluate, args.lang, args.per_lang), classifier, settings)
            lid.print_confusion(summary["routing"])
    print(json.dumps(summary, ensure_ascii=False))
    return 0
