"""What every stage shares: audio frames and codecs, call events, the clock, bundled model weights."""
