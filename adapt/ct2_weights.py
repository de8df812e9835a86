"""Reading a CTranslate2 `model.bin` (the layout `ctranslate2.specs.ModelSpec._serialize` writes).

numpy only: a dict from CTranslate2 variable names to arrays, plus the aliases (tied weights).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

SUPPORTED_BINARY_VERSIONS = (5, 6)
# Order of ctranslate2's DataType enum (include/ctranslate2/types.h); bfloat16 is read as raw uint16.
_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, np.uint16)
_BFLOAT16 = 5


class Ct2FormatError(ValueError):
    """A file that is not a CTranslate2 model this reader knows."""


@dataclass(frozen=True)
class Ct2Weights:
    spec: str  # e.g. "WhisperSpec"
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]  # alias -> variable it shares

    def get(self, name: str) -> np.ndarray:
        """The variable `name` (through its alias), dequantized to float32."""
        name = self.aliases.get(name, name)
        value = self.variables[name]
        scale = self.variables.get(f"{name}_scale")
        if value.dtype == np.int8 and scale is not None:
            return value.astype(np.float32) / scale.astype(np.float32).reshape(-1, 1)
        return value.astype(np.float32)

    def scalar(self, name: str) -> int:
        return int(self.variables[name].reshape(-1)[0])


def _unpack(stream: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    data = stream.read(size)
    if len(data) != size:
        raise Ct2FormatError("the model file ends too early")
    return int(struct.unpack(fmt, data)[0])


def _string(stream: BinaryIO) -> str:
    length = _unpack(stream, "H")
    return stream.read(length)[:-1].decode("utf-8")  # NUL-terminated


def _array(stream: BinaryIO) -> np.ndarray:
    shape = tuple(_unpack(stream, "I") for _ in range(_unpack(stream, "B")))
    type_id = _unpack(stream, "B")
    size = _unpack(stream, "I")
    if type_id >= len(_DTYPES):
        raise Ct2FormatError(f"unknown data type id {type_id}")
    array = np.frombuffer(stream.read(size), dtype=_DTYPES[type_id]).reshape(shape)
    if type_id == _BFLOAT16:  # upper half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return array


def read_ct2_weights(model_bin: Path) -> Ct2Weights:
    with Path(model_bin).open("rb") as stream:
        version = _unpack(stream, "I")
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise Ct2FormatError(f"{model_bin}: binary version {version}, this reader knows {SUPPORTED_BINARY_VERSIONS}")
        spec = _string(stream)
        revision = _unpack(stream, "I")
        variables = {}
        for _ in range(_unpack(stream, "I")):
            name = _string(stream)
            variables[name] = _array(stream)
        aliases = {}
        for _ in range(_unpack(stream, "I")):
            alias = _string(stream)
            aliases[alias] = _string(stream)
    return Ct2Weights(spec, revision, variables, aliases)
