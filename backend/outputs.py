"""Writing outputs so that nothing is ever lost: the one home of every rule about an output path.

Every command writes its outputs through :class:`Output`:

- **check** (before any work): an output is never an input, inside an input, or holding one (``output_is_input``);
  an existing output is replaced only with ``--overwrite`` (or, for ``predict``, ``evaluate`` and ``export-onnx``,
  which have no such option, always) and only when eo-ssl wrote it (``not_eo_ssl_output``): a folder holds
  :data:`MARKER` (or the format file of an older eo-ssl), a GeoTIFF an ``EO_SSL_*`` tag, a GeoPackage ``eo_ssl_*``
  layer metadata, an ONNX file eo-ssl as producer, a ``.qml`` style the eo-ssl comment. An empty folder counts as
  free. Temporaries of dead runs are swept (a killed run leaves ``OUT.tmp-PID`` / ``.NAME.part-PID.tif``), and a
  live one of another process means another run is writing the same output (``output_busy``).
- **write** under a temporary name (:meth:`Output.start`), created with the process's umask;
- **commit**: the marker, the user's umask as permissions (safetensors and ``mkstemp`` write 0600), and a rename
  that never clobbers: a folder is renamed onto a path that must not exist (POSIX ``rename`` refuses a non-empty
  folder), a file is hard-linked (``link`` refuses an existing name). With ``--overwrite`` the output checked at the
  start must still be the same file (device and inode): a finished output another run wrote meanwhile is never
  replaced (``output_exists``).
- a full disk (``ENOSPC``/``EDQUOT`` anywhere while writing) is ``disk_full`` with the bytes needed and free
  (:func:`disk_errors`, :func:`abort_on_failure`); :func:`backend.disk.check_free_space` refuses a known size
  before the first byte.

The rules' parts live beside it: :mod:`backend.disk` (permissions, free space, what a full disk is) and
:mod:`backend.output_paths` (an output is never an input, temporary names, stale temporaries, locks). Only the
standard library here: the CLI calls :func:`refuse_foreign` before a command's heavy imports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fnmatch
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from backend.disk import SPACE_ERRNOS, apply_umask, disk_full_error, disk_full_of, remember_free_space
from backend.errors import EoSslError
from backend.output_paths import (
    busy_with,
    lock,
    refuse_output_in_inputs,
    release_locks,
    remove,
    sweep_stale,
    temp_path,
)

#: The file eo-ssl puts in every folder it writes (JSON: tool, kind, version, created, the entries it wrote).
MARKER = ".eo-ssl-output"
#: Folders written before the marker existed: format file -> (its "format" value, the entries eo-ssl wrote there).
LEGACY_FORMATS = {
    "manifest.json": ("eo-ssl-chipstore", ("manifest.json", "*.npy")),
    "model.json": ("eo-ssl-model", ("model.json", "weights.safetensors", "training_curves.png", "checkpoints")),
    "dataset.json": ("eo-ssl-dataset", ("dataset.json", "images", "masks", "splits", "index.gpkg", "ATTRIBUTION.md")),
    "report.json": ("eo-ssl-report", ("report.json", "report.html", "*.png")),
}
#: The comment that marks a .qml style as eo-ssl's (backend.predict.styles writes it).
QML_MARK = "<!-- written by eo-ssl -->"


# -- full disks -------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def disk_errors(path: str | Path, needed: int | None = None) -> Iterator[None]:
    """Turn a full disk met anywhere inside into ``disk_full`` (with the bytes needed, when known, and free)."""
    try:
        yield
    except EoSslError:
        raise
    except Exception as exc:
        full = disk_full_of(exc, path, needed)
        if full is not None:
            raise full from exc
        raise


@contextlib.contextmanager
def abort_on_failure(path: str | Path, *undo: Callable[[], object],
                     always: Callable[[], object] | None = None) -> Iterator[None]:
    """Write ``path`` inside the block. When the block fails in any way (an error, a cancel, Ctrl+C), each ``undo``
    runs in order (remove the temporaries: :meth:`Output.abort`, a raster sink's ``abort``) and the failure goes on,
    as ``disk_full`` for ``path`` when the disk or the quota filled up; ``always`` runs last either way (close a
    reader thread). The callables run at the end, so they see what the block created (closures)."""
    try:
        yield
    except BaseException as exc:
        for step in undo:
            step()
        full = None if isinstance(exc, EoSslError) else disk_full_of(exc, path)
        if full is not None:
            raise full from exc
        raise
    finally:
        if always is not None:
            always()


# -- what eo-ssl wrote ------------------------------------------------------------------------------------------------
def read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "eo-ssl" else None


def write_marker(folder: Path, kind: str, entries: Iterable[str] | None = None) -> None:
    """Mark ``folder`` as eo-ssl's. ``entries``: the names (or glob patterns) eo-ssl writes there; anything else
    found there later is the user's and stops a replacement. None: no list (the whole folder is eo-ssl's)."""
    from backend import __version__

    record: dict[str, Any] = {"tool": "eo-ssl", "kind": kind, "code_version": __version__,
                              "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if entries is not None:
        record["entries"] = sorted(entries)
    (folder / MARKER).write_text(json.dumps(record, indent=1) + "\n")


def _owned_entries(folder: Path) -> list[str] | None:
    """The entries (names or glob patterns) eo-ssl wrote in ``folder``: its marker's list, or an older eo-ssl's
    known layout; None when neither says."""
    marker = read_marker(folder)
    if marker is not None:
        return [str(e) for e in marker["entries"]] if isinstance(marker.get("entries"), list) else None
    for name, (fmt, entries) in LEGACY_FORMATS.items():
        try:
            if json.loads((folder / name).read_text()).get("format") == fmt:
                return list(entries)
        except (OSError, ValueError, AttributeError):
            continue
    return None


def foreign_entries(folder: Path) -> list[str]:
    """Entries of an eo-ssl folder that eo-ssl did not write (QGIS's ``-wal``/``.aux.xml`` companions of a listed
    file count as its own)."""
    ours = _owned_entries(folder)
    if ours is None:
        return []

    def owned(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, e) or name.startswith((e + ".", e + "-")) for e in ours)

    return sorted(p.name for p in folder.iterdir() if p.name != MARKER and not owned(p.name))


def is_eo_ssl_output(path: str | Path) -> bool:
    """Whether eo-ssl wrote ``path`` (see the module docstring for how each kind of output says so)."""
    path = Path(path)
    if path.is_symlink():
        return False
    if path.is_dir():  # (a training run of an older eo-ssl: its checkpoints' run.json)
        return read_marker(path) is not None or _owned_entries(path) is not None or \
            (path / "checkpoints" / "run.json").is_file()
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import rasterio

            with rasterio.open(path) as src:
                return any(k.upper().startswith("EO_SSL") for k in src.tags())
        if suffix == ".gpkg":
            import pyogrio

            return any(str(k).lower().startswith("eo_ssl")
                       for k in (pyogrio.read_info(path).get("layer_metadata") or {}))
        if suffix == ".onnx":  # eo-ssl export-onnx: producer "eo-ssl" and eo_ssl_* metadata
            import onnx

            model = onnx.load(str(path), load_external_data=False)
            return model.producer_name == "eo-ssl" or any(p.key.startswith("eo_ssl") for p in model.metadata_props)
        if suffix == ".qml":
            with open(path, encoding="utf-8", errors="replace") as f:
                return QML_MARK in f.read(4096)
    except Exception:  # noqa: BLE001 - unreadable: not something we can vouch for
        return False
    return False


def is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


# -- foreign paths ----------------------------------------------------------------------------------------------------
def refuse_foreign(outs: Iterable[tuple[str, str | Path]]) -> None:
    """``not_eo_ssl_output`` for an output path that exists, is not empty, and was not written by eo-ssl: no command
    writes over (or into) such a path, with or without ``--overwrite``. Checked by the CLI before any heavy import;
    :class:`Output` and the training commands check everything else."""
    for option, out in outs:
        p = Path(out)
        if os.path.lexists(p) and not is_empty_dir(p) and not is_eo_ssl_output(p):
            raise EoSslError("not_eo_ssl_output", f"{option} {p} exists and was not written by eo-ssl: it is left "
                             "alone (--overwrite only ever replaces what eo-ssl wrote).",
                             f"Pick a new {option}, or move {p} away yourself.")


# -- a folder written in place (a training run's) -------------------------------------------------------------------
def claim_folder(folder: Path, kind: str, entries: Iterable[str], option: str = "--out",
                 keep_if: Callable[[], bool] | None = None) -> None:
    """Create ``folder`` (an output written in place, e.g. a training run's checkpoints) with the eo-ssl marker,
    lock it for this run (``output_busy`` when another run holds it), and, if this run created it, remove it again
    when the run fails unless ``keep_if()`` (see :func:`remove_on_failure`)."""
    folder = Path(folder)
    created = not folder.exists() or is_empty_dir(folder)
    new = [p for p in (folder, *folder.parents) if not p.exists()]  # what mkdir creates, removed if the run fails
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if read_marker(folder) is None:
            write_marker(folder, kind, entries)
            apply_umask(folder / MARKER)
    except OSError as exc:
        for p in new:  # innermost first; only folders this call made, and only while empty
            with contextlib.suppress(OSError):
                p.rmdir()
        if exc.errno in SPACE_ERRNOS:
            raise disk_full_error(folder) from exc
        raise EoSslError("output_not_writable", f"Cannot write {option} {folder}: {exc.strerror or exc}.",
                         f"Pick an {option} in a folder you can write to.") from exc
    if not lock(folder / MARKER):
        raise EoSslError("output_busy", f"Another eo-ssl run is writing {option} {folder}.",
                         f"Wait for it to finish, or pick another {option}.")
    if created:
        remove_on_failure(folder, keep_if)
    remember_free_space(folder)


# -- what a failed run leaves --------------------------------------------------------------------------------------
_ON_FAILURE: list[tuple[Path, Callable[[], bool] | None]] = []


def remove_on_failure(path: str | Path, keep_if: Callable[[], bool] | None = None) -> None:
    """Have the CLI remove ``path`` if this run fails, unless ``keep_if()`` then says it is worth keeping (e.g. a
    checkpoint to resume from). For outputs created in place (a training run's folder), not under a temporary name."""
    _ON_FAILURE.append((Path(path), keep_if))


def finished(path: str | Path) -> None:
    """``path`` (a folder written in place, :func:`claim_folder`) now holds a complete output: a failure or a late
    signal after this point never removes it."""
    key = os.path.realpath(path)
    _ON_FAILURE[:] = [(p, keep) for p, keep in _ON_FAILURE if os.path.realpath(p) != key]


def run_failed() -> None:
    """Called by the CLI when a command failed: remove what :func:`remove_on_failure` asked for."""
    release_locks()
    while _ON_FAILURE:
        path, keep_if = _ON_FAILURE.pop()
        if keep_if is None or not keep_if():
            remove(path)


def run_started() -> None:
    """Called by the CLI before a command runs: forget what earlier in-process calls left registered."""
    release_locks()
    _ON_FAILURE.clear()


def run_succeeded() -> None:
    """Called by the CLI when a command succeeded: nothing to remove; the locks of its outputs are released."""
    release_locks()
    _ON_FAILURE.clear()


# -- commits ----------------------------------------------------------------------------------------------------------
def identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def place(tmp: Path, out: Path, option: str = "--out") -> None:
    """Rename ``tmp`` to ``out``, which must not exist (an empty folder may be replaced): never clobbers."""
    try:
        if tmp.is_dir():
            os.rename(tmp, out)  # POSIX: fails on a non-empty folder and on a file
            return
        try:
            os.link(tmp, out)  # fails when out exists
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK,
                                 errno.ENOSYS):
                raise
            if os.path.lexists(out):  # a file system without hard links: check, then rename
                raise FileExistsError(errno.EEXIST, "exists", str(out)) from exc
            os.rename(tmp, out)
            return
        os.unlink(tmp)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            raise EoSslError("output_exists", f"{option} {out} was written by another run while this one ran; it was "
                             "left as it is.", f"Run again with another {option} (this run's result was dropped)."
                             ) from exc
        raise


class Output:
    """One output path of a command (see the module docstring): check, write under a temporary name, commit.

    ``folder``: a folder output (chip store, dataset, report, model package) rather than one file. ``replace``:
    whether an existing output of eo-ssl may be replaced (``--overwrite``, or always for predict/evaluate).
    ``kind`` goes into the marker.
    """

    def __init__(self, path: str | Path, *, kind: str, folder: bool, replace: bool = False,
                 inputs: Iterable[tuple[str, str | Path]] = (), option: str = "--out",
                 sidecars: Iterable[Path] = ()) -> None:
        self.path = Path(path)
        self.kind, self.folder, self.replace, self.option = kind, folder, replace, option
        self.inputs = list(inputs)
        self.sidecars = [Path(s) for s in sidecars]
        self.tmp = temp_path(self.path, "tmp", folder)
        self.existing: tuple[int, int] | None = None
        self.swept: list[Path] = []

    # -- before any work ---------------------------------------------------------------------------------------
    def check(self) -> Output:
        out, option = self.path, self.option
        refuse_output_in_inputs([(option, out), *((option, s) for s in self.sidecars)], self.inputs)
        if out.is_symlink() or (out.exists() and out.is_dir() != self.folder):
            what = "a folder" if out.is_dir() else "a file"
            raise EoSslError("not_eo_ssl_output" if out.exists() else "output_not_writable",
                             f"{option} {out} is {what} (or a link), not the {'folder' if self.folder else 'file'} "
                             "eo-ssl writes here; it is left alone.", f"Pick a new {option}.")
        parent = out.parent if str(out.parent) else Path(".")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EoSslError("output_not_writable", f"Cannot create folder {parent}: {exc.strerror}.",
                             f"Pick an {option} in a folder you can write to.") from exc
        if not os.access(parent, os.W_OK | os.X_OK):
            raise EoSslError("output_not_writable", f"Cannot write to folder {parent}.",
                             f"Pick an {option} in a folder you can write to.")
        self.swept = [p for q in (out, *self.sidecars) for p in sweep_stale(q)]
        remember_free_space(out)
        other = busy_with(out)
        if other is not None:
            raise EoSslError("output_busy", f"Another eo-ssl run (process {other}) is writing {option} {out}.",
                             f"Wait for it to finish, or pick another {option}.")
        for p in (out, *self.sidecars):
            self._check_existing(p)
        self.existing = identity(out) if out.exists() and not is_empty_dir(out) else None
        return self

    def log_swept(self, log: Callable[[str], Any]) -> Output:
        """Say what :meth:`check` removed (temporaries of killed runs), if anything."""
        if self.swept:
            log(f"Removed {len(self.swept)} leftover(s) of killed runs: " + ", ".join(p.name for p in self.swept))
        return self

    def _check_existing(self, p: Path) -> None:
        if not os.path.lexists(p) or is_empty_dir(p):
            return
        option = self.option
        if not is_eo_ssl_output(p):
            raise EoSslError("not_eo_ssl_output", f"{p} exists and was not written by eo-ssl: it is left alone "
                             "(--overwrite only ever replaces what eo-ssl wrote).",
                             f"Pick a new {option}, or move {p} away yourself.")
        if not self.replace:
            raise EoSslError("output_exists", f"Output {p} already exists.",
                             f"Pick a new {option} or add --overwrite.")
        if p.is_dir():
            extra = foreign_entries(p)
            if extra:
                raise EoSslError("not_eo_ssl_output", f"{p} holds files eo-ssl did not write "
                                 f"({', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}); replacing it would "
                                 "delete them.", f"Move them out of {p}, or pick a new {option}.")

    # -- while writing -------------------------------------------------------------------------------------------
    def start(self) -> Path:
        """The temporary path to write (a folder is created, empty); stale ones of this process are removed."""
        remove(self.tmp)
        if self.folder:
            self.tmp.mkdir(parents=True)
        return self.tmp

    def abort(self) -> None:
        remove(self.tmp)
        remove(Path(str(self.tmp) + ".aux.xml"))

    # -- at the end ----------------------------------------------------------------------------------------------
    def commit(self, tmp: Path | None = None) -> Path:
        """Put the finished temporary (``tmp``, default :attr:`tmp`) at :attr:`path` (see the module docstring)."""
        tmp = Path(tmp or self.tmp)
        out = self.path
        if self.folder:
            write_marker(tmp, self.kind, [p.name for p in tmp.iterdir() if p.name != MARKER])
        apply_umask(tmp)
        now = identity(out) if os.path.lexists(out) and not is_empty_dir(out) else None
        if now != self.existing:
            raise EoSslError("output_exists", f"{self.option} {out} was written by another run while this one ran; "
                             "it was left as it is.", f"Run again with another {self.option} (this run's result "
                             "was dropped).")
        trash = None
        if self.existing is not None:
            trash = temp_path(out, "old", self.folder)
            os.rename(out, trash)
        elif is_empty_dir(out):
            out.rmdir()
        try:
            place(tmp, out, self.option)
        except BaseException:
            if trash is not None:
                os.rename(trash, out)
            raise
        if trash is not None:
            remove(trash)
            aux = Path(str(out) + ".aux.xml")  # GDAL's statistics of the old file describe another raster
            if not self.folder and aux.exists() and not os.path.lexists(Path(str(tmp) + ".aux.xml")):
                aux.unlink()
        tmp_aux = Path(str(tmp) + ".aux.xml")
        if tmp_aux.exists():
            apply_umask(tmp_aux)
            os.replace(tmp_aux, Path(str(out) + ".aux.xml"))
        return out
