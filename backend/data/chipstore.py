"""The chip store: the training-time format (see docs/DESIGN.md, "Chip store layout").

:class:`ChipStoreWriter` creates the arrays under a temporary folder, fills them window by window and, on
:meth:`~ChipStoreWriter.commit`, writes ``manifest.json`` and renames the folder into place: a killed run
never leaves a folder that looks finished. :class:`ChipStore` opens a finished store with memory maps.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import EoSslError
from backend.outputs import Output

FORMAT = "eo-ssl-chipstore"
VERSION = 1
#: codes of the ``split`` array (per pixel of a cube, per chip of a chips store); here, with the format, so that
#: readers of a store (the datasets, the training loops) need none of the GIS libraries that write one
SPLITS = {"none": 0, "train": 1, "val": 2, "test": 3}
SPLIT_NAMES = {v: k for k, v in SPLITS.items()}
#: rows of a cube read at once when a whole array is scanned (memory bounded by the chunk, not the grid)
ROW_CHUNK = 512
REPREPARE = "The chip store is damaged (a copy cut short, or a full disk): run `eo-ssl prepare` again to rebuild it."


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


def npy_bytes(shape: tuple[int, ...], dtype: str | np.dtype) -> int:
    """Bytes of a ``.npy`` file of ``shape`` and ``dtype``, header included, known before anything is written (a
    disk too small is refused before the first header: :func:`backend.disk.check_free_space`)."""
    dtype = np.dtype(dtype)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                                               "shape": tuple(int(n) for n in shape)})
    return buf.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


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
        if self._write_window(key, value) or self._write_rows(key, value):
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

    def _write_rows(self, key: Any, value: Any) -> bool:
        """``arr[i] = x``, ``arr[i:j] = x``, ``arr[:] = x`` (whole rows: one contiguous run of bytes) with ``pwrite``
        too: a full disk is then an ``OSError`` (ENOSPC) rather than the SIGBUS a write into a memory map gets."""
        if isinstance(key, tuple):
            if len(key) != 1:
                return False
            key = key[0]
        n = self.shape[0] if self.shape else 0
        if isinstance(key, (int, np.integer)):
            start = int(key) + n if key < 0 else int(key)
            stop, squeeze = start + 1, True
        elif isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(n)
            squeeze = False
        elif key is Ellipsis:
            start, stop, squeeze = 0, n, False
        else:
            return False
        if not 0 <= start < stop <= n:
            return False
        value = np.asarray(value, dtype=self.dtype)
        chunk = max(1, (16 * 2**20) // max(self.row_bytes, 1))  # bounded memory for a broadcast scalar
        with open(self.path, "r+b") as f:
            for r in range(start, stop, chunk):
                r1 = min(stop, r + chunk)
                part = value if squeeze else (value[r - start:r1 - start] if value.ndim == len(self.shape)
                                              and value.shape[0] == stop - start else value)
                block = np.ascontiguousarray(np.broadcast_to(part, (r1 - r, *self.shape[1:])))
                os.pwrite(f.fileno(), block, self.offset + r * self.row_bytes)
        return True

    def __getitem__(self, key: Any) -> np.ndarray:
        mm, rel = self._slab(key)
        if mm is None:
            return np.empty((0, *self.shape[1:]), self.dtype)
        return np.array(mm[rel])

    def flush(self) -> None:
        """Nothing stays mapped between assignments, so there is nothing to flush."""


class ChipStoreWriter:
    """Write arrays into ``<out>.tmp-<pid>``; :meth:`commit` renames it to ``out``; :meth:`abort` removes it.

    The output rules (never over an input, only over a store eo-ssl wrote and only with ``overwrite``, no clobber at
    the rename, stale temporaries swept, the user's umask) are :class:`backend.outputs.Output`'s.
    """

    def __init__(self, out: str | Path, overwrite: bool = False,
                 inputs: list[tuple[str, str | Path]] | None = None) -> None:
        self.out = Path(out)
        self.output = Output(self.out, kind="chipstore", folder=True, replace=overwrite, inputs=inputs or ()).check()
        self.overwrite = overwrite
        self.tmp = self.output.start()
        self.arrays: dict[str, SlabArray] = {}

    def create(self, name: str, shape: tuple[int, ...], dtype: str | np.dtype, fill: float | int = 0) -> SlabArray:
        arr = SlabArray(self.tmp / f"{name}.npy", shape, dtype)
        if fill != 0:  # new files are zero-filled already
            arr[...] = fill
        self.arrays[name] = arr
        return arr

    def nbytes(self) -> int:
        """Bytes of the arrays created so far, once written (they start sparse)."""
        return sum(int(np.prod(a.shape, dtype=np.int64)) * a.dtype.itemsize + a.offset for a in self.arrays.values())

    def commit(self, manifest: dict[str, Any]) -> Path:
        for arr in self.arrays.values():
            arr.flush()
        self.arrays.clear()
        manifest = {"format": FORMAT, "version": VERSION, **manifest}
        (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        return self.output.commit()

    def abort(self) -> None:
        self.arrays.clear()
        self.output.abort()


class ChipStore:
    """A finished chip store, arrays memory-mapped read-only (safe to share with DataLoader workers)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not manifest_path.exists():
            raise EoSslError("not_a_chipstore", f"{self.path} is not a chip store (no manifest.json).",
                             "Point --data at a folder written by `eo-ssl prepare`.")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        except (ValueError, OSError) as exc:
            raise EoSslError("corrupt_store", f"{manifest_path} is damaged: {exc}.", REPREPARE) from exc
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT:
            raise EoSslError("not_a_chipstore", f"{manifest_path} is not an eo-ssl chip store manifest.",
                             "Point --data at a folder written by `eo-ssl prepare`.")
        if int(self.manifest.get("version", 0)) > VERSION:
            raise EoSslError("chipstore_too_new", f"{self.path} has format version {self.manifest['version']}; "
                             f"this eo-ssl reads up to {VERSION}.", "Update eo-ssl.")
        self._arrays: dict[str, np.ndarray] = {}
        self._check_arrays()

    def _check_arrays(self) -> None:
        """Every array's header is readable and its file as long as the header says (a truncated copy or a disk
        that filled up fails here, when the store is opened, not in a DataLoader worker mid-training)."""
        for f in sorted(self.path.glob("*.npy")):
            try:
                with open(f, "rb") as fh:
                    version = np.lib.format.read_magic(fh)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(fh)
                    offset = fh.tell()
                size = f.stat().st_size
            except (ValueError, OSError, SyntaxError) as exc:
                raise EoSslError("corrupt_store", f"{f} is damaged: {exc}.", REPREPARE) from exc
            expected = offset + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            if size != expected:
                raise EoSslError("corrupt_store", f"{f} is {size:,} bytes; its header says {expected:,} "
                                 f"({'truncated' if size < expected else 'extra bytes at the end'}).", REPREPARE)

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


def grid_resolution(store: ChipStore) -> tuple[float, str]:
    """The pixel size the model was trained at: the cube's grid, or a chip file's own transform."""
    if store.kind != "chips":
        return float(store.manifest["grid"]["resolution"]), "grid"
    chips = store.manifest.get("chips", {})
    try:
        import rasterio

        first = Path(chips["root"]) / chips["paths"][0]
        with rasterio.open(first) as src:
            if src.crs is not None and src.crs.is_projected:
                res = float(abs(src.transform.a))
                # EuroSAT chips are ~9.9992 m: call that Sentinel-2's 10 m, so prediction copies 10 m bands
                snapped = next((r for r in (10.0, 20.0, 60.0) if abs(res - r) <= 0.005 * r), res)
                return snapped, f"first chip ({first.name}: {res:.6g} m)"
    except Exception:  # noqa: BLE001 - the chip folder may have moved: fall back to Sentinel-2's 10 m
        pass
    return 10.0, "assumed (Sentinel-2 10 m; the chip files were not readable)"
