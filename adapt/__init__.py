"""Adapting the recognizer to data: CTranslate2 <-> Hugging Face Whisper, fine-tuning on a dialect,
export for faster-whisper, registration in the dialect registry, and language identification.

Everything here imports torch/transformers lazily: the hotline's serving path never imports this package.
"""
