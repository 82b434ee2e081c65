"""The chip store: the training-time format (see docs/DESIGN.md, "Chip store layout").

:class:`ChipStoreWriter` creates the arrays under a temporary folder, fills them window by window and, on
:meth:`~ChipStoreWriter.commit`, writes ``manifest.json`` and renames the folder into place: a killed run
never leaves a folder that looks finished. :class:`ChipStore` opens a finished store with memory maps.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import EoSslError

FORMAT = "eo-ssl-chipstore"
VERSION = 1
#: codes of the ``split`` array (per pixel of a cube, per chip of a chips store); here, with the format, so that
#: readers of a store (the datasets, the training loops) need none of the GIS libraries that write one
SPLITS = {"none": 0, "train": 1, "val": 2, "test": 3}
SPLIT_NAMES = {v: k for k, v in SPLITS.items()}


class BandStats:
    """Running mean/std (exact, float64 sums) and percentiles (from a bounded random sample) per band.

    The sample is a uniform sample without replacement of every value seen (bottom-k sampling: each value gets
    a random key and the ``sample_size`` smallest keys are kept), so its size, and memory, stay fixed however
    many windows are added.
    """

    def __init__(self, n_bands: int, sample_size: int = 65_536, seed: int = 0) -> None:
        self.n = np.zeros(n_bands, np.int64)
        self.s = np.zeros(n_bands, np.float64)
        self.ss = np.zeros(n_bands, np.float64)
        self.sample_size = sample_size
        self.samples: list[np.ndarray] = [np.zeros(0, np.float64) for _ in range(n_bands)]
        self.keys: list[np.ndarray] = [np.zeros(0, np.float64) for _ in range(n_bands)]
        self.threshold = np.ones(n_bands, np.float64)  # largest kept key once the sample is full
        self.rng = np.random.default_rng(seed)

    def update(self, band: int, values: np.ndarray) -> None:
        values = values.astype(np.float64, copy=False).ravel()
        if values.size == 0:
            return
        self.n[band] += values.size
        self.s[band] += values.sum()
        self.ss[band] += np.square(values).sum()
        # only values whose key would fall below the threshold can enter the sample: draw how many, then which
        tau = self.threshold[band]
        k = values.size if tau >= 1.0 else int(self.rng.binomial(values.size, tau))
        if k == 0:
            return
        picked = values if k == values.size else values[self.rng.choice(values.size, size=k, replace=False)]
        keys = np.concatenate([self.keys[band], self.rng.uniform(0.0, tau, k)])
        sample = np.concatenate([self.samples[band], picked])
        if keys.size > self.sample_size:
            keep = np.argpartition(keys, self.sample_size - 1)[:self.sample_size]
            keys, sample = keys[keep], sample[keep]
            self.threshold[band] = float(keys.max())
        self.keys[band], self.samples[band] = keys, sample

    def result(self, names: list[str]) -> dict[str, dict[str, float]]:
        out = {}
        for i, name in enumerate(names):
            n = int(self.n[i])
            if n == 0:
                out[name] = {"count": 0, "mean": 0.0, "std": 1.0, "p02": 0.0, "p98": 0.0}
                continue
            mean = self.s[i] / n
            var = max(self.ss[i] / n - mean * mean, 0.0)
            p02, p98 = np.percentile(self.samples[i], [2, 98])
            out[name] = {"count": n, "mean": float(mean), "std": float(max(np.sqrt(var), 1e-6)),
                         "p02": float(p02), "p98": float(p98)}
        return out


def check_writable(out: Path, overwrite: bool) -> None:
    """Fail before any work if ``out`` exists (without ``overwrite``) or its parent is not writable."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise EoSslError("output_exists", f"Output {out} already exists.", "Pick a new --out or add --overwrite.")
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EoSslError("output_not_writable", f"Cannot create folder {parent}: {exc.strerror}.",
                         "Pick an --out in a folder you can write to.") from exc
    if not os.access(parent, os.W_OK):
        raise EoSslError("output_not_writable", f"Cannot write to folder {parent}.",
                         "Pick an --out in a folder you can write to.")


class SlabArray:
    """A ``.npy`` file being written, memory-mapped only for the slab of leading-axis rows each assignment touches.

    ``arr[r0:r1, c0:c1] = block`` maps rows ``r0:r1``, writes and unmaps at once. A memory map of the whole file
    would keep every page written so far in the process's resident set (the pages are the process's until it
    unmaps them), so peak memory would grow with the output; this way it stays bounded by one window.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: str | np.dtype) -> None:
        self.path, self.shape, self.dtype = Path(path), tuple(int(n) for n in shape), np.dtype(dtype)
        header = np.lib.format.open_memmap(self.path, mode="w+", dtype=self.dtype, shape=self.shape)
        self.offset = int(header.offset)
        del header  # the file exists, zero-filled (sparse); nothing stays mapped
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def _slab(self, key: Any) -> tuple[np.memmap | None, tuple]:
        """The mapped rows that ``key`` touches, and ``key`` relative to them."""
        key = key if isinstance(key, tuple) else (key,)
        first, rest = (key[0], key[1:]) if key else (slice(None), ())
        if first is Ellipsis:
            first, rest = slice(None), (Ellipsis, *rest)
        n = self.shape[0] if self.shape else 0
        if isinstance(first, (int, np.integer)):
            start = int(first) + n if first < 0 else int(first)
            stop, rel = start + 1, 0
        elif isinstance(first, slice) and first.step in (None, 1):
            start, stop, _ = first.indices(n)
            rel = slice(None)
        else:  # fancy index on the first axis: map the whole array
            start, stop, rel = 0, n, first
        if stop <= start:
            return None, ()
        mm = np.memmap(self.path, dtype=self.dtype, mode="r+", offset=self.offset + start * self.row_bytes,
                       shape=(stop - start, *self.shape[1:]))
        return mm, (rel, *rest)

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._write_window(key, value):
            return
        mm, rel = self._slab(key)
        if mm is not None:
            mm[rel] = value
            del mm  # unmap: the written pages leave this process (the kernel writes them back)

    def _write_window(self, key: Any, value: Any) -> bool:
        """``arr[r0:r1, c0:c1] = block`` (the writer's case) as one ``pwrite`` per row: the bytes go to the page
        cache without being mapped into this process at all. False for any other key or value."""
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, slice) for k in key)
                and len(self.shape) >= 2 and key[0].step in (None, 1) and key[1].step in (None, 1)):
            return False
        r0, r1, _ = key[0].indices(self.shape[0])
        c0, c1, _ = key[1].indices(self.shape[1])
        target = (r1 - r0, c1 - c0, *self.shape[2:])
        if not isinstance(value, np.ndarray) or value.shape != target or r1 <= r0 or c1 <= c0:
            return False
        block = np.ascontiguousarray(value, dtype=self.dtype)
        pixel = self.row_bytes // self.shape[1]
        with open(self.path, "r+b") as f:
            fd = f.fileno()
            for i, row in enumerate(block):
                os.pwrite(fd, row, self.offset + (r0 + i) * self.row_bytes + c0 * pixel)
        return True

    def __getitem__(self, key: Any) -> np.ndarray:
        mm, rel = self._slab(key)
        if mm is None:
            return np.empty((0, *self.shape[1:]), self.dtype)
        return np.array(mm[rel])

    def flush(self) -> None:
        """Nothing stays mapped between assignments, so there is nothing to flush."""


class ChipStoreWriter:
    """Write arrays into ``<out>.tmp-<pid>``; :meth:`commit` renames it to ``out``; :meth:`abort` removes it."""

    def __init__(self, out: str | Path, overwrite: bool = False) -> None:
        self.out = Path(out)
        check_writable(self.out, overwrite)
        self.overwrite = overwrite
        self.tmp = self.out.with_name(f"{self.out.name}.tmp-{os.getpid()}")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        self.arrays: dict[str, SlabArray] = {}

    def create(self, name: str, shape: tuple[int, ...], dtype: str | np.dtype, fill: float | int = 0) -> SlabArray:
        arr = SlabArray(self.tmp / f"{name}.npy", shape, dtype)
        if fill != 0:  # new files are zero-filled already
            arr[...] = fill
        self.arrays[name] = arr
        return arr

    def commit(self, manifest: dict[str, Any]) -> Path:
        for arr in self.arrays.values():
            arr.flush()
        self.arrays.clear()
        manifest = {"format": FORMAT, "version": VERSION, **manifest}
        (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if self.out.exists():
            trash = self.out.with_name(f"{self.out.name}.old-{os.getpid()}")
            os.replace(self.out, trash)
            os.replace(self.tmp, self.out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(self.tmp, self.out)
        return self.out

    def abort(self) -> None:
        self.arrays.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


class ChipStore:
    """A finished chip store, arrays memory-mapped read-only (safe to share with DataLoader workers)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not manifest_path.exists():
            raise EoSslError("not_a_chipstore", f"{self.path} is not a chip store (no manifest.json).",
                             "Point --data at a folder written by `eo-ssl prepare`.")
        self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if self.manifest.get("format") != FORMAT:
            raise EoSslError("not_a_chipstore", f"{manifest_path} is not an eo-ssl chip store manifest.",
                             "Point --data at a folder written by `eo-ssl prepare`.")
        if int(self.manifest.get("version", 0)) > VERSION:
            raise EoSslError("chipstore_too_new", f"{self.path} has format version {self.manifest['version']}; "
                             f"this eo-ssl reads up to {VERSION}.", "Update eo-ssl.")
        self._arrays: dict[str, np.ndarray] = {}

    # -- arrays -----------------------------------------------------------------------------------------
    def array(self, name: str) -> np.ndarray | None:
        """A memory-mapped array by file stem (``s2``, ``s2_valid``, ``labels``...), or None if absent."""
        if name not in self._arrays:
            f = self.path / f"{name}.npy"
            if not f.exists():
                return None
            # a plain ndarray view of the read-only memory map: slicing an np.memmap costs several times more
            self._arrays[name] = np.load(f, mmap_mode="r").view(np.ndarray)
        return self._arrays[name]

    def __getstate__(self) -> dict:  # memmaps are reopened in each DataLoader worker
        return {"path": self.path, "manifest": self.manifest, "_arrays": {}}

    # -- metadata ---------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.manifest.get("kind", "cube")

    @property
    def sensors(self) -> list[str]:
        return list(self.manifest.get("sensors", {}))

    def bands(self, sensor: str) -> list[str]:
        return list(self.manifest["sensors"][sensor]["bands"])

    def dates(self, sensor: str) -> list[str | None]:
        return list(self.manifest["sensors"][sensor]["dates"])

    def stats(self, sensor: str) -> dict[str, dict[str, float]]:
        return self.manifest["sensors"][sensor]["stats"]

    def mean_std(self, sensor: str) -> tuple[np.ndarray, np.ndarray]:
        st = self.stats(sensor)
        names = self.bands(sensor)
        return (np.array([st[b]["mean"] for b in names], np.float32),
                np.array([st[b]["std"] for b in names], np.float32))

    @property
    def classes(self) -> list[dict]:
        return list(self.manifest.get("labels", {}).get("classes", []))

    @property
    def grid(self):  # noqa: ANN201 - backend.data.grid.Grid
        from backend.data.grid import Grid

        return Grid.from_dict(self.manifest["grid"])

    @property
    def shape(self) -> tuple[int, int]:
        g = self.manifest["grid"]
        return int(g["height"]), int(g["width"])

    def __repr__(self) -> str:
        return f"ChipStore({str(self.path)!r}, kind={self.kind}, sensors={self.sensors})"
