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


class BandStats:
    """Running mean/std (exact, float64 sums) and percentiles (from a bounded random sample) per band."""

    def __init__(self, n_bands: int, sample_size: int = 200_000, seed: int = 0) -> None:
        self.n = np.zeros(n_bands, np.int64)
        self.s = np.zeros(n_bands, np.float64)
        self.ss = np.zeros(n_bands, np.float64)
        self.sample_size = sample_size
        self.samples: list[list[np.ndarray]] = [[] for _ in range(n_bands)]
        self.rng = np.random.default_rng(seed)

    def update(self, band: int, values: np.ndarray) -> None:
        values = values.astype(np.float64, copy=False)
        if values.size == 0:
            return
        self.n[band] += values.size
        self.s[band] += values.sum()
        self.ss[band] += np.square(values).sum()
        take = min(values.size, max(1, self.sample_size // 64))
        self.samples[band].append(self.rng.choice(values, size=take, replace=False))

    def result(self, names: list[str]) -> dict[str, dict[str, float]]:
        out = {}
        for i, name in enumerate(names):
            n = int(self.n[i])
            if n == 0:
                out[name] = {"count": 0, "mean": 0.0, "std": 1.0, "p02": 0.0, "p98": 0.0}
                continue
            mean = self.s[i] / n
            var = max(self.ss[i] / n - mean * mean, 0.0)
            sample = np.concatenate(self.samples[i])
            p02, p98 = np.percentile(sample, [2, 98])
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
        self.arrays: dict[str, np.memmap] = {}

    def create(self, name: str, shape: tuple[int, ...], dtype: str | np.dtype, fill: float | int = 0) -> np.memmap:
        arr = np.lib.format.open_memmap(self.tmp / f"{name}.npy", mode="w+", dtype=np.dtype(dtype), shape=shape)
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
            self._arrays[name] = np.load(f, mmap_mode="r")
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
