"""Files on disk: the user's permissions on what eo-ssl wrote (``apply_umask``), how much room an output has
(``free_bytes``, ``check_free_space``: refused before the first byte) and how a full disk or quota met while writing
becomes ``disk_full`` with the bytes needed and free (``is_disk_full``, ``disk_full_of``, ``disk_full_error``).
Split from :mod:`backend.outputs`, which applies these to every output; only the standard library here (the CLI
uses it before a command's heavy imports).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from backend.errors import EoSslError


def umask() -> int:
    """The process's umask, read without changing it where Linux allows (``/proc/self/status``)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | Path) -> None:
    """Give ``path`` (and, for a folder, everything under it) the permissions of a file the user creates: 0666 /
    0777 less the umask. Temporary files are created private (0600); a finished output is the user's."""
    mask = umask()
    path = Path(path)
    if path.is_symlink():
        return
    if path.is_dir():
        os.chmod(path, 0o777 & ~mask)
        for root, dirs, files in os.walk(path):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o777 & ~mask)
            for f in files:
                p = os.path.join(root, f)
                if not os.path.islink(p):
                    os.chmod(p, 0o666 & ~mask)
    elif path.exists():
        os.chmod(path, 0o666 & ~mask)




def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


#: how the C libraries say it when no errno reaches Python (GDAL, SQLite under OGR's GeoPackage driver, Windows)
_SPACE_TEXT = ("no space left on device", "disk quota exceeded", "not enough space", "database or disk is full",
               "free disk space available is")


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: str | Path) -> int:
    """Free bytes (for this user) on the file system that holds, or will hold, ``path``."""
    try:
        return int(shutil.disk_usage(_nearest_existing(Path(path))).free)
    except OSError:
        return -1


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk or the quota is full. GDAL's errors carry
    no errno, only the C library's text."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in SPACE_ERRNOS:
            return True
        if any(t in str(exc).lower() for t in _SPACE_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


#: free bytes where each output goes, when its run checked it (a full disk's message says what there was)
_FREE_AT_START: dict[str, int] = {}


def disk_full_error(path: str | Path, needed: int | None = None) -> EoSslError:
    """``disk_full`` for ``path``: the bytes needed (when known) and free when the run started (else now)."""
    free = _FREE_AT_START.get(os.path.realpath(path), free_bytes(path))
    need = f"it needs about {_size(needed)}, " if needed else ""
    return EoSslError("disk_full", f"The disk holding {path} filled up while eo-ssl wrote it: {need}"
                      f"{_size(max(free, 0))} were free when this run started.",
                      "Free some space, or write the output to another disk. Nothing of this run was left behind.")


def disk_full_of(exc: BaseException, path: str | Path | None, needed: int | None = None) -> EoSslError | None:
    """``disk_full`` for ``path`` when ``exc`` says the disk filled up, or when it is a failed write and that disk
    has (almost) no space left (GDAL's "Write failed" carries no errno and no text that says why); else None."""
    if isinstance(exc, EoSslError):
        return exc if exc.code == "disk_full" else None
    if not isinstance(exc, Exception):  # a cancel, Ctrl+C, an exit
        return None
    if is_disk_full(exc):
        return disk_full_error(path or ".", needed)
    if path and "write" in str(exc).lower() and 0 <= free_bytes(path) < 1 << 20:
        return disk_full_error(path, needed)
    return None


def check_free_space(path: str | Path, needed: int, what: str = "the output") -> None:
    """Refuse before the first byte when ``needed`` bytes (a known size) do not fit where ``path`` goes."""
    free = free_bytes(path)
    if 0 <= free < needed:
        raise EoSslError("disk_full", f"{what} needs about {_size(needed)} at {path}, but only {_size(free)} are "
                         "free there.", "Free some space, pick an --out on another disk, or a smaller AOI.")

def remember_free_space(path: str | Path) -> None:
    """Note the free bytes where ``path`` goes now, at the start of its run: a full disk's message says them."""
    _FREE_AT_START[os.path.realpath(path)] = free_bytes(path)
