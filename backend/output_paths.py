"""The paths around an output: never an input (``refuse_output_in_inputs``), the temporary names a run writes it
under and the ones dead runs left (``temp_path``, ``sweep_stale``, ``busy_with``), and the locks of folders written
in place (``lock``). Split from :mod:`backend.outputs`, which applies these to every output; only the standard
library here (the CLI checks inputs against outputs before a command's heavy imports).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from backend.errors import EoSslError


def remove(path: Path) -> None:
    """Remove a file or a folder tree, whichever it is (nothing if absent)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.path.expanduser(str(path)))))


def _within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def refuse_output_in_inputs(outputs: Iterable[tuple[str, str | Path]], inputs: Iterable[tuple[str, str | Path]]
                            ) -> None:
    """``output_is_input`` when an output path is an input, holds one or lies inside one (folder inputs: a chip
    store, a folder of rasters, a model package). ``outputs``/``inputs``: (option, path) pairs; inputs that do not
    exist (``random``, ...) are ignored."""
    ins = [(opt, _real(p)) for opt, p in inputs if p not in (None, "") and Path(str(p)).exists()]
    for out_opt, out in outputs:
        if out in (None, ""):
            continue
        o = _real(out)
        for in_opt, i in ins:
            if _within(i, o):
                what = "is" if i == o else "holds"
                raise EoSslError("output_is_input", f"{out_opt} {out} {what} the input {in_opt} {i}: writing it "
                                 "would destroy the input.", f"Pick an {out_opt} outside the inputs.")
            if i.is_dir() and _within(o, i):
                raise EoSslError("output_is_input", f"{out_opt} {out} lies inside the input {in_opt} {i}.",
                                 f"Pick an {out_opt} outside the input folders (eo-ssl never writes into its "
                                 "inputs).")


#: Temporary names: ``OUT.tmp-PID`` (folders), ``.NAME.tmp-PID.SUFFIX`` (files), also ``part`` and ``old``.
_TEMP = re.compile(r"^\.?(?P<name>.+?)\.(?P<tag>tmp|part|old)-(?P<pid>\d+)(?P<rest>(\..*)?)$")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (on this machine). Anything that cannot be told counts as alive: its
    temporaries are then left alone."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return not ok or code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def temp_path(out: Path, tag: str = "tmp", folder: bool = False, pid: int | None = None) -> Path:
    """The temporary name of ``out`` while this process writes it: ``OUT.tmp-PID`` for a folder,
    ``.NAME.tmp-PID.SUFFIX`` for a file (hidden, and keeping the suffix GDAL/OGR choose a driver by)."""
    pid = os.getpid() if pid is None else pid
    out = Path(out)
    if folder:
        return out.with_name(f"{out.name}.{tag}-{pid}")
    return out.with_name(f".{out.name}.{tag}-{pid}{out.suffix}")


def temporaries(out: Path) -> list[tuple[Path, int]]:
    """Temporary names of ``out`` in its folder, with the process id each belongs to."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    found = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return []
    for p in entries:
        m = _TEMP.match(p.name)
        if m and m.group("name") == out.name:
            found.append((p, int(m.group("pid"))))
    return found


def sweep_stale(out: Path) -> list[Path]:
    """Remove the temporaries of ``out`` left by processes that are gone (a killed run); return them."""
    removed = []
    for p, pid in temporaries(out):
        if not pid_alive(pid):
            remove(p)
            removed.append(p)
    return removed


def busy_with(out: Path) -> int | None:
    """The id of another live process writing ``out`` (it holds a temporary of it), or None."""
    for _, pid in temporaries(out):
        if pid != os.getpid() and pid_alive(pid):
            return pid
    return None


_LOCKS: dict[str, int] = {}


def lock(path: Path) -> bool:
    """Hold an exclusive lock on the file ``path`` until this run ends (:func:`release_locks`); False if another
    process (or another run in this one) holds it. No locking where the platform has no ``flock``: then only the
    other checks apply."""
    try:
        import fcntl
    except ImportError:  # Windows
        return True
    key = os.path.realpath(path)
    if key in _LOCKS:
        return True
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _LOCKS[key] = fd
    return True


def release_locks() -> None:
    while _LOCKS:
        _, fd = _LOCKS.popitem()
        with contextlib.suppress(OSError):
            os.close(fd)


def locked_by_other(path: Path) -> bool:
    """Whether someone else holds :func:`lock` on ``path`` (tested without keeping the lock)."""
    if not path.is_file() or os.path.realpath(path) in _LOCKS:
        return False
    try:
        import fcntl
    except ImportError:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
