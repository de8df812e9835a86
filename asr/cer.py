"""Character error rate for Chinese: NFKC, punctuation and spaces removed, Levenshtein over characters."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass


def normalize_for_cer(text: str) -> str:
    """NFKC, lower case, and only letters, digits and marks kept (punctuation, symbols, spaces go)."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LNM")


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance over characters (substitutions, deletions, insertions cost 1)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_char in enumerate(reference, start=1):
        current = [i]
        for j, hyp_char in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_char != hyp_char)))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class CerCount:
    errors: int
    reference_chars: int

    @property
    def rate(self) -> float:
        if self.reference_chars == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.reference_chars


def cer_count(reference: str, hypothesis: str) -> CerCount:
    ref, hyp = normalize_for_cer(reference), normalize_for_cer(hypothesis)
    return CerCount(edit_distance(ref, hyp), len(ref))


def cer(reference: str, hypothesis: str) -> float:
    """Errors / reference characters after normalisation (can exceed 1 with insertions)."""
    return cer_count(reference, hypothesis).rate


def corpus_cer(pairs: Iterable[tuple[str, str]]) -> float:
    """Total errors over total reference characters of (reference, hypothesis) pairs."""
    counts = [cer_count(ref, hyp) for ref, hyp in pairs]
    return CerCount(sum(c.errors for c in counts), sum(c.reference_chars for c in counts)).rate
