"""The ``--out`` folder of a training command (``pretrain``, ``finetune``, ``import-weights``): one skeleton for all.

- :func:`check_out` before any work: never an input, only a folder eo-ssl wrote, ``--resume`` / ``--overwrite``
  rules, no other run writing it;
- :func:`begin` once the inputs are known to be good: ``--resume`` must agree with the run it continues (the keys a
  command names), ``--overwrite`` starts afresh, and the run configuration is saved beside the checkpoints (the
  folder appears only then);
- :func:`write_package` at the end: ``training_curves.png`` plotted from the history and the package written once
  (``weights.safetensors`` + ``model.json`` + curves, see :mod:`backend.models.package`), with its ``artifact``
  events.

The checkpoints are written by :mod:`backend.train.runner` (``MODEL_DIR/checkpoints/last.ckpt``) and read back here
(:func:`load_checkpoint_safely`, :func:`checkpoint_step`): the runner imports this module, never the other way.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend import output_paths, outputs
from backend.errors import EoSslError
from backend.events import Events

if TYPE_CHECKING:
    import torch

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
RUN_CONFIG = "run.json"
CURVES = "training_curves.png"


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / CHECKPOINT_DIR


#: what a training command writes in its --out folder (listed in the folder's eo-ssl marker; anything else there is
#: left alone)
PACKAGE_ENTRIES = ("model.json", "weights.safetensors", CURVES, CHECKPOINT_DIR)


def check_out(out: str | Path, resume: bool, overwrite: bool, inputs: Sequence[tuple[str, str]] = ()) -> None:
    """The --out folder of a training command, before any work: never an input (or inside one), only a folder
    eo-ssl wrote (or an empty or new one), ``--resume`` needs a checkpoint, a package or an unfinished run needs
    ``--resume`` or ``--overwrite``, and no other run is writing it (see :mod:`backend.outputs`)."""
    out = Path(out)
    output_paths.refuse_output_in_inputs([("--out", out)], inputs)
    ckpt = checkpoint_dir(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise EoSslError("not_eo_ssl_output", f"{out} exists and is not a folder eo-ssl wrote; it is left alone.",
                         "Choose another --out.")
    if out.exists() and not outputs.is_empty_dir(out) and not outputs.is_eo_ssl_output(out):
        raise EoSslError("not_eo_ssl_output", f"{out} holds files eo-ssl did not write; a model is not written into "
                         "it.", "Choose a new or empty folder as --out.")
    foreign = outputs.foreign_entries(out) if overwrite and out.is_dir() else []
    if foreign:  # the one --overwrite rule of every command (backend.outputs.Output): only what eo-ssl wrote
        raise EoSslError("not_eo_ssl_output", f"{out} holds files eo-ssl did not write ({', '.join(foreign[:5])}"
                         f"{' ...' if len(foreign) > 5 else ''}); --overwrite replaces only a folder that is all "
                         "eo-ssl's.", f"Move them out of {out}, or pick a new --out.")
    if output_paths.locked_by_other(out / outputs.MARKER):
        raise EoSslError("output_busy", f"Another eo-ssl run is writing {out}.", "Wait for it, or pick another --out.")
    if resume:
        if not (ckpt / LAST).exists():
            raise EoSslError("no_checkpoint", f"--resume: {out} holds no checkpoint to continue from.",
                             "Point --out at the folder of the interrupted run, or run without --resume.")
    else:
        has_package = (out / "model.json").exists()
        if (has_package or (ckpt / LAST).exists()) and not overwrite:
            what = "a model package" if has_package else "the checkpoint of an unfinished run"
            raise EoSslError("output_exists", f"{out} already holds {what}.",
                             "Use --resume to continue an interrupted run, --overwrite to start afresh, or a new "
                             "--out.")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise EoSslError("output_not_writable", f"Cannot write to {out} ({existing} is not a writable folder).",
                         "Choose a writable --out.")
    output_paths.sweep_stale(out)  # a package folder a killed run was writing (OUT.tmp-PID)
    output_paths.sweep_stale(ckpt / LAST)


def save_run_config(out_dir: str | Path, config: dict[str, Any]) -> None:
    """What a resumed run must agree with (method, encoder, bands...), as JSON beside the checkpoint. The --out
    folder appears here: marked as eo-ssl's, locked for this run, and removed if the run fails before it holds a
    checkpoint to resume from."""
    d = checkpoint_dir(out_dir)
    outputs.claim_folder(Path(out_dir), "model", PACKAGE_ENTRIES, keep_if=lambda: (d / LAST).exists())
    d.mkdir(parents=True, exist_ok=True)
    tmp = output_paths.temp_path(d / RUN_CONFIG)
    tmp.write_text(json.dumps(config, indent=1, default=str))
    os.replace(tmp, d / RUN_CONFIG)


def load_run_config(out_dir: str | Path) -> dict[str, Any] | None:
    f = checkpoint_dir(out_dir) / RUN_CONFIG
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise EoSslError("corrupt_checkpoint", f"{f} is not valid JSON: {exc}",
                         "Delete the checkpoints folder and run without --resume.") from exc


def check_resume_matches(out_dir: str | Path, config: dict[str, Any], keys: Sequence[str]) -> None:
    """Refuse ``--resume`` when the new command line disagrees with the run it would continue."""
    saved = load_run_config(out_dir)
    if saved is None:
        return
    diff = [k for k in keys if k in saved and json.dumps(saved[k], default=str) != json.dumps(config.get(k),
                                                                                             default=str)]
    if diff:
        details = ", ".join(f"{k}: {saved[k]!r} then, {config.get(k)!r} now" for k in diff)
        raise EoSslError("resume_mismatch", f"--resume would continue a different run ({details}).",
                         "Repeat the original options, or use a new --out.")

def begin(out_dir: str | Path, run_config: dict[str, Any], resume_keys: Sequence[str], *, resume: bool,
          overwrite: bool) -> None:
    """Global rank 0, once the inputs are known to be good: refuse a ``--resume`` that disagrees with the run it
    would continue (on ``resume_keys``), drop an earlier run's checkpoints on ``--overwrite``, and save the run
    configuration (the ``--out`` folder appears here). A refused ``--resume`` (options that differ, a checkpoint that
    is a pickle or cut short) changes nothing in the folder."""
    if resume:
        check_resume_matches(out_dir, run_config, resume_keys)
        checkpoint_step(checkpoint_dir(out_dir) / LAST)  # a pickle or a cut checkpoint is refused before run.json
    elif overwrite:
        shutil.rmtree(checkpoint_dir(out_dir), ignore_errors=True)
    save_run_config(out_dir, run_config)


# -- checkpoints on disk ----------------------------------------------------------------------------------------
def load_checkpoint_safely(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint read with ``weights_only=True``: tensors and plain containers only, never code."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise EoSslError("no_checkpoint", f"There is no checkpoint to resume from at {path}.",
                         "Run without --resume to start afresh, or point --out at the folder of the killed run.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise EoSslError("unsafe_checkpoint", f"{path} holds Python objects other than tensors and plain data; "
                         "eo-ssl does not unpickle them (a pickle can run code).",
                         "Delete the checkpoints folder and run without --resume.") from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise EoSslError("corrupt_checkpoint", f"Cannot read checkpoint {path}: {exc}",
                         "The file is damaged or truncated; delete it and run without --resume.") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "loops" not in ckpt:
        raise EoSslError("corrupt_checkpoint", f"{path} is not an eo-ssl training checkpoint.",
                         "Delete the checkpoints folder and run without --resume.")
    return ckpt


#: (path, mtime, size) -> step of the checkpoints :func:`checkpoint_step` accepted (each file version read once)
_CHECKED: dict[tuple[str, int, int], int] = {}


def checkpoint_step(path: str | Path) -> int:
    """The step of the checkpoint at ``path``, once :func:`load_checkpoint_safely` accepts it. A file is read once
    per version: ``model_folder.begin`` checks it before the run's ``run.json`` is rewritten, :func:`fit` needs its
    step."""
    path = Path(path)
    try:
        st = path.stat()
        key: tuple[str, int, int] | None = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _CHECKED:
        return _CHECKED[key]
    step = int(load_checkpoint_safely(path).get("global_step", 0))
    if key is not None:
        _CHECKED[key] = step
    return step


def write_package(out_dir: str | Path, state: dict[str, torch.Tensor], meta: dict[str, Any], events: Events, *,
                  history: Sequence[dict[str, Any]], curves: Sequence[tuple[str, str]], title: str,
                  keep_checkpoints: bool = True) -> Path | None:
    """The model package with its ``training_curves.png`` (``curves``: (history key, panel title)), and the
    ``model`` / ``plot`` artifact events; the checkpoints are removed unless ``keep_checkpoints`` (a finished
    pre-training run can be continued with ``--resume --epochs`` more). The curves' path, or None."""
    from backend.models.package import save_package

    out = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_curves(history, Path(tmp) / CURVES, curves, title=title)
        events.check_cancel()  # the last safe point: a signal after it finds the package complete
        save_package(out, state, meta, extra_files={CURVES: png} if png else None)
    outputs.finished(out)  # complete: never removed by a failure or a signal after this
    if not keep_checkpoints:
        shutil.rmtree(checkpoint_dir(out), ignore_errors=True)  # resumable state is for unfinished runs only
    events.artifact("model", str(out))
    if png is None:
        return None
    events.artifact("plot", str(out / CURVES), name="training curves")
    return out / CURVES


# -- curves -----------------------------------------------------------------------------------------------------
def plot_curves(history: Sequence[dict[str, Any]], path: str | Path, keys: Sequence[tuple[str, str]] | None = None,
                title: str = "") -> Path | None:
    """One small panel per ``(key, label)`` against the epoch, as a PNG; None when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return None
    keys = list(keys or [("loss", "loss"), ("lr", "learning rate")])
    keys = [(k, label) for k, label in keys if any(h.get(k) is not None for h in history)]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], keys):
        pts = [(h["epoch"] + 1, h[key]) for h in history if h.get(key) is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3)
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
