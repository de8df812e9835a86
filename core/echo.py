"""Is what the caller's line brings the bot's own voice coming back (a speakerphone without echo
cancellation)? The heard audio is compared with every stretch of the audio the bot has just sent:
the echo path delays and attenuates it, and a codec or a loudspeaker colours it, but the waveform
stays alike, while a caller's own voice is unrelated to the bot's.
"""

from __future__ import annotations

import numpy as np


def echo_likeness(heard: np.ndarray, played: np.ndarray) -> float:
    """The highest normalized cross-correlation (0..1) of `heard` with any stretch of `played`, both
    PCM at one rate: near 1 for a delayed, attenuated copy, near 0 for unrelated speech."""
    n, m = len(heard), len(played)
    if n == 0 or m < n:
        return 0.0
    x = heard.astype(np.float64)
    y = played.astype(np.float64)
    heard_energy = float(np.dot(x, x))
    if heard_energy == 0.0:
        return 0.0
    size = 1 << (n + m - 1).bit_length()
    # correlation[k] = sum_i x[i] * y[i + k], for every lag at which `heard` lies within `played`
    correlation = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)[: m - n + 1]
    cumulative = np.concatenate([[0.0], np.cumsum(y * y)])
    stretch_energy = cumulative[n:] - cumulative[: m - n + 1]
    likeness = np.abs(correlation) / np.sqrt(heard_energy * np.maximum(stretch_energy, 1e-9))
    return float(min(1.0, likeness.max()))
