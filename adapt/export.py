"""A fine-tuned HF Whisper -> a faster-whisper (CTranslate2) model directory."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Files of the base model that faster-whisper reads beside model.bin; without tokenizer.json it would
# try to download one.
_COPIED = ("tokenizer.json", "preprocessor_config.json")
# What the recognizer relies on in config.json; taken from the base model, which has the same vocabulary.
_KEPT_CONFIG = ("suppress_ids", "suppress_ids_begin", "lang_ids", "alignment_heads")


def merged(model: Any, lora: bool) -> Any:
    """The plain Whisper model, LoRA adapters merged into its weights."""
    return model.merge_and_unload() if lora else model


def export_ct2(model: Any, base: Path, out: Path, *, quantization: str = "int8",
               log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Path:
    """Save `model` (HF, merged) and convert it with ctranslate2's TransformersConverter into `out`
    (replaced whole when the conversion succeeded)."""
    import ctranslate2
    from transformers import WhisperTokenizerFast  # type: ignore[attr-defined]

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as tmp:
        hf_dir, ct2_dir = Path(tmp) / "hf", Path(tmp) / "ct2"
        model.save_pretrained(hf_dir)
        WhisperTokenizerFast(tokenizer_file=str(base / "tokenizer.json")).save_pretrained(hf_dir)
        ctranslate2.converters.TransformersConverter(str(hf_dir)).convert(str(ct2_dir), quantization=quantization)
        for name in _COPIED:
            if (base / name).is_file():
                shutil.copyfile(base / name, ct2_dir / name)
        _keep_base_config(base, ct2_dir)
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(ct2_dir), out)
    log(f"exported the CTranslate2 model ({quantization}) to {out}")
    return out


def _keep_base_config(base: Path, ct2_dir: Path) -> None:
    base_config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    path = ct2_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    config.update({key: base_config[key] for key in _KEPT_CONFIG if key in base_config})
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
