"""Model packages: a folder with ``weights.safetensors`` and ``model.json`` (see ../shared/DESIGN.md).

``model.json`` says everything prediction needs: task, method, architecture, input bands in order, temporal
set-up, grid resolution, normalisation, classes, training configuration, metrics and provenance. Weights are
safetensors only: loading never unpickles, so a package from a stranger cannot run code. A file that is a
pickle (``torch.save``) or anything else is refused with a clear error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from backend import __version__, disk, output_paths, outputs
from backend.errors import EoSslError

FORMAT = "eo-ssl-model"
VERSION = 1
WEIGHTS = "weights.safetensors"
META = "model.json"


def save_package(out: str | Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any],
                 extra_files: dict[str, Path] | None = None, overwrite: bool = True) -> Path:
    """Write ``out/`` atomically (temporary folder renamed into place, never over a folder another run wrote
    meanwhile). ``extra_files``: name -> file to copy. Into an existing ``out`` (a training run's, checked by the
    command: see :func:`backend.train.model_folder.check_out`) only the package's files are moved, so what lives beside
    them (resumable checkpoints, the user's files) stays. The files get the user's umask, not safetensors' 0600."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise EoSslError("output_exists", f"Model folder {out} already exists.", "Pick a new --out or --overwrite.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_paths.temp_path(out, folder=True)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        full = {"format": FORMAT, "version": VERSION, "code_version": __version__,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **meta}
        (tmp / META).write_text(json.dumps(full, indent=1, default=str))
        for name, src in (extra_files or {}).items():
            if Path(src).exists():
                shutil.copy2(src, tmp / name)
        entries = sorted({*(f.name for f in tmp.iterdir()), "checkpoints"})
        disk.apply_umask(tmp)
        if out.exists() and not outputs.is_empty_dir(out):
            # keep what lives beside the package (e.g. resumable checkpoints) by moving only our files
            for f in tmp.iterdir():
                os.replace(f, out / f.name)
            tmp.rmdir()
            if outputs.read_marker(out) is None:
                outputs.write_marker(out, "model", entries)
        else:
            outputs.write_marker(tmp, "model", entries)
            outputs.place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; a pickle or a damaged file is refused."""
    path = Path(path)
    if not path.exists():
        raise EoSslError("input_not_found", f"Weights file {path} does not exist.", "Check the path.")
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header ('{'); the length's first byte can
    # be 0x80 like a pickle's protocol marker, so only a file without that JSON start is taken for a pickle
    if head[8:9] != b"{" and (head[:2] == b"PK" or head[:1] == b"\x80"):
        raise EoSslError("unsafe_weights", f"{path} is a pickle (torch.save / Lightning checkpoint), not safetensors.",
                         "eo-ssl never unpickles weights (a pickle can run code). Convert it with "
                         "safetensors.torch.save_file(state_dict, 'weights.safetensors') where you trust it.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise EoSslError("corrupt_weights", f"Cannot read weights {path}: {exc}",
                         "The file is damaged or truncated; use another copy of the model.") from exc


def read_meta(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    meta_path = path / META
    if not meta_path.exists():
        raise EoSslError("not_a_model", f"{path} is not an eo-ssl model package (no {META}).",
                         "Point at a folder written by `eo-ssl pretrain` or `eo-ssl finetune`.")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise EoSslError("corrupt_model", f"{meta_path} is not valid JSON: {exc}", "Use another copy.") from exc
    if meta.get("format") != FORMAT:
        raise EoSslError("not_a_model", f"{meta_path} is not an eo-ssl model description.", "Check the path.")
    if int(meta.get("version", 0)) > VERSION:
        raise EoSslError("model_too_new", f"{path} has format version {meta['version']}.", "Update eo-ssl.")
    return meta


def check_classifier_meta(meta: dict[str, Any], path: str | Path) -> None:
    """What prediction needs from ``model.json`` beyond its input (:func:`backend.models.inputs.spec_from_meta`
    checks that): a fine-tuned task, its architecture and classes; a package that lacks one is ``corrupt_model``
    (not a KeyError deep inside)."""
    task = meta.get("task")
    if task not in ("segmentation", "classification"):
        raise EoSslError("not_a_classifier", f"{path} is a {task} package ({meta.get('method')}): it has no "
                         "classes to predict.", "Fine-tune it first: eo-ssl finetune --init MODEL_DIR ...")
    arch = meta.get("architecture")
    problems = []
    if not isinstance(arch, dict) or not (arch.get("encoder") or arch.get("family") in ("unet3d", "pixel")):
        problems.append("architecture (the network to build)")
    if not meta.get("classes"):
        problems.append("classes")
    if problems:
        raise EoSslError("corrupt_model", f"{Path(path) / META} lacks {', '.join(problems)}.",
                         "The package is damaged or was edited by hand: use another copy, or fine-tune again.")


def load_package(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(model.json, state dict) of a package folder."""
    meta = read_meta(path)
    return meta, load_weights(Path(path) / WEIGHTS)


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file (weights are identified by it in ``model.json`` provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_under(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` whose names start with ``prefix`` (``"encoder."``, ``"temporal."``, ...), with the
    prefix removed: a package keeps each part of its model under one prefix."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
