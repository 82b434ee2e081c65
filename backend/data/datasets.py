"""torch Datasets over a chip store. No GDAL call happens here: every read is a memory-mapped slice.

Samples are dicts of tensors:

- ``s2`` (T, C, h, w) float32, normalised with the store's per-band mean/std, 0 where invalid;
  ``s2_valid`` (T, h, w) bool; ``s2_doy`` (T,) day of year (0 when unknown).
- ``s1``, ``s1_valid``, ``s1_doy`` likewise when the store has Sentinel-1 and it was asked for.
- ``label`` (h, w) int64 class ids, -1 = ignore (outside parcels, or parcels of another split);
  ``aoi`` (h, w) bool; ``pos`` (row, col) of the crop's top-left pixel on the grid.

``dates="random"`` draws one S2 date per sample (T = 1; the S1 date nearest to it), which is what the
image-level SSL methods want; ``dates="all"`` keeps the whole series, for temporal models.

Whole batches at once (:meth:`RandomCropDataset.__getitems__`, which torch's DataLoader calls with a batch's indices
when ``raw_batches`` is on; :func:`backend.train.runner.make_loader` turns it on): the crops are copied straight from
the memory maps into one array per key, in the store's dtype and layout (a :class:`RawBatch`: uint16 Sentinel-2
crosses a worker's process boundary at half the bytes of float32, in one piece per key, and in the main process
nothing is collated), and :func:`standardize` makes it the collated samples' format on the device the batch is used
on. The batched reads live here for the random crops of pre-training (image-level methods and dense-moco);
``backend.data.labelled`` reads the fine-tuning crops sample by sample.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from backend.data.chipstore import SPLITS, ChipStore
from backend.data.reader import chip_values, cube_labels, cube_valid, cube_values, store_spec, window
from backend.errors import EoSslError
from backend.models import float32_of


def _doy(dates: Sequence[str | None]) -> np.ndarray:
    return np.array([dt.date.fromisoformat(d).timetuple().tm_yday if d else 0 for d in dates], np.int64)


def _ordinal(dates: Sequence[str | None]) -> np.ndarray:
    return np.array([dt.date.fromisoformat(d).toordinal() if d else 0 for d in dates], np.int64)


class RawBatch(dict):
    """A batch read in one call, values as stored: ``SENSOR`` (B, h, w, T, C) in the store's dtype (channels last,
    as in the store; uint16 viewed as int16, with ``SENSOR_unsigned``: see :func:`backend.models.float32_of`),
    ``SENSOR_valid`` (B, h, w, T) uint8, ``SENSOR_mean``/``SENSOR_std`` (B, C) float32 (each
    sample's store statistics), ``SENSOR_doy`` (B, T), ``aoi`` (B, h, w) bool, ``pos`` (B, 2), and ``label`` (B, h, w)
    int16 when the store has labels. :func:`standardize` turns it into what the collated samples hold."""


def collate(batch: object) -> object:
    """The DataLoader's ``collate_fn``: a :class:`RawBatch` passes as it is, samples are collated by torch's
    default."""
    return batch if isinstance(batch, RawBatch) else default_collate(batch)  # type: ignore[arg-type]


def standardize(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A :class:`RawBatch` (any device) -> the collated samples' format: ``SENSOR`` (B, [T,] C, h, w) float32
    standardised with each sample's statistics, 0 where invalid; ``SENSOR_valid`` (B, [T,] h, w) bool; ``label``
    int64 (a new dict; the batch is left as it is). A batch without raw values is returned as it is. The stored
    values are first converted to float32 (GPUs convert every dtype, but few of their kernels take uint16), in their
    memory layout: the (C, h, w) of a sample is then channels-last in memory (what convolutions prefer on GPUs and
    with oneDNN; a conversion into the channels-first layout took 3x as long on the CPU)."""
    if not any(f"{s}_mean" in batch for s in ("s2", "s1")):
        return batch
    batch = dict(batch)
    for sensor in ("s2", "s1"):
        if f"{sensor}_mean" not in batch:
            continue
        x, valid = batch[sensor], batch[f"{sensor}_valid"].bool()
        mean, std = batch.pop(f"{sensor}_mean").float(), batch.pop(f"{sensor}_std").float()
        unsigned = f"{sensor}_unsigned" in batch
        batch.pop(f"{sensor}_unsigned", None)
        if x.ndim == 5:  # (B, h, w, T, C) -> (B, T, C, h, w)
            x, valid = x.permute(0, 3, 4, 1, 2), valid.permute(0, 3, 1, 2)
            scale, shift = (1.0 / std)[:, None, :, None, None], (-mean / std)[:, None, :, None, None]
            invalid = ~valid[:, :, None]
        else:  # (B, h, w, C) -> (B, C, h, w)
            x = x.permute(0, 3, 1, 2)
            scale, shift = (1.0 / std)[:, :, None, None], (-mean / std)[:, :, None, None]
            invalid = ~valid[:, None]
        out = float32_of(x, unsigned)
        torch.addcmul(shift, out, scale, out=out)
        if not bool(valid.all()):
            out.masked_fill_(invalid, 0.0)
        batch[sensor] = out
        batch[f"{sensor}_valid"] = valid.contiguous()
    if "label" in batch and batch["label"].dtype != torch.int64:
        batch["label"] = batch["label"].long()
    return batch


def shared_tensor(shape: tuple[int, ...], dtype: np.dtype) -> tuple[torch.Tensor, np.ndarray]:
    """A tensor for a batch and its numpy view (to fill): in a DataLoader worker, in shared memory from the start, so
    that handing it to the main process copies nothing more (torch moves a tensor's storage to shared memory when it
    crosses otherwise)."""
    out = torch.empty(shape, dtype=torch.from_numpy(np.empty(0, dtype)).dtype)
    if torch.utils.data.get_worker_info() is not None:
        out.share_memory_()
    return out, out.numpy()


def _transportable(t: torch.Tensor) -> torch.Tensor:
    """uint16 as int16 (same bits; :func:`backend.models.float32_of` puts them back): a GPU copies int16."""
    return t.view(torch.int16) if t.dtype == torch.uint16 else t


class _CubeBase(Dataset):
    """Shared reading and normalisation for crops of a ``cube`` store."""

    def __init__(self, store: ChipStore | str, sensors: Sequence[str] | None = None, split: str | None = None,
                 dates: str = "all", normalize: bool = True) -> None:
        self.store = store if isinstance(store, ChipStore) else ChipStore(store)
        if self.store.kind != "cube":
            raise EoSslError("wrong_store_kind", f"{self.store.path} holds chips, not a cube.",
                             "Use ChipDataset for chip stores.")
        available = self.store.sensors
        self.sensors = list(sensors) if sensors is not None else available
        missing = [s for s in self.sensors if s not in available]
        if missing:
            raise EoSslError("sensor_missing", f"{self.store.path} has no {', '.join(missing).upper()} data.",
                             f"Prepare it with --{missing[0]} ..., or train on {', '.join(available).upper()} only.")
        if dates not in ("all", "random"):
            raise ValueError(f"dates must be 'all' or 'random', not {dates!r}")
        self.dates = dates
        self.split = split
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}")
        if split is not None and self.store.array("split") is None:
            raise EoSslError("no_labels", f"{self.store.path} has no labels to split.", "Prepare with --parcels.")
        self.normalize = normalize
        self.specs = {s: store_spec(self.store, s) for s in self.sensors}  # the store's statistics
        self._doy = {s: _doy(self.store.dates(s)) for s in self.sensors}
        self._ord = {s: _ordinal(self.store.dates(s)) for s in self.sensors}
        self.has_labels = self.store.array("labels") is not None

    def read(self, row: int, col: int, size: int, rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        """One sample (see the module docstring): :mod:`backend.data.reader`'s read, standardised with the store's
        statistics, 0 where a sensor is invalid."""
        sl = window(row, col, size)
        out: dict[str, torch.Tensor] = {"pos": torch.tensor([row, col])}
        t_s2: int | None = None
        if self.dates == "random" and "s2" in self.sensors:  # first, whatever the order of ``sensors``
            t_s2 = self._pick_date(self.store.array("s2_valid"), sl, rng)
        for sensor in self.sensors:
            if self.dates == "all":
                t_idx = slice(None)
            else:
                if sensor == "s2":
                    t = t_s2
                elif t_s2 is None:  # no S2 asked for: a date of this sensor's own
                    t = self._pick_date(self.store.array(f"{sensor}_valid"), sl, rng)
                else:  # the S1 date nearest to the chosen S2 date
                    t = int(np.argmin(np.abs(self._ord[sensor] - self._ord["s2"][t_s2])))
                t_idx = slice(t, t + 1)
            x = cube_values(self.store, sensor, sl, t_idx)  # (T, C, h, w)
            v = cube_valid(self.store, sensor, sl, t_idx)  # (T, h, w)
            if self.normalize:
                self.specs[sensor].normalize(x, v, channel_axis=1)
            else:
                np.copyto(x, np.float32(0), where=~v[:, None])
            out[sensor] = torch.from_numpy(x)
            out[f"{sensor}_valid"] = torch.from_numpy(v)
            out[f"{sensor}_doy"] = torch.from_numpy(self._doy[sensor][t_idx].copy())
        out["aoi"] = torch.from_numpy(np.array(self.store.array("aoi")[sl], dtype=bool))
        if self.has_labels:
            out["label"] = torch.from_numpy(cube_labels(self.store, sl, self.split))
        return out

    @staticmethod
    def _pick_date(valid: np.ndarray, sl: tuple[slice, slice], rng: np.random.Generator | None) -> int:
        """A date with the most valid pixels among a few random draws (clouds make some dates empty)."""
        n_t = valid.shape[2]
        if n_t == 1:
            return 0
        rng = rng or np.random.default_rng()
        draws = rng.choice(n_t, size=min(n_t, 4), replace=False)
        fractions = np.asarray(valid[sl][:, :, draws]).mean(axis=(0, 1))
        return int(draws[int(np.argmax(fractions))])


class RandomCropDataset(_CubeBase):
    """``length`` random ``size`` x ``size`` crops whose centre lies in the AOI (and in ``split`` if given).

    With ``seed`` set, sample ``i`` is the same crop every time (``set_epoch`` changes the draw per epoch);
    with ``seed=None`` every access draws afresh.
    """

    def __init__(self, store: ChipStore | str, size: int = 64, length: int = 1024, *, sensors: Sequence[str] | None
                 = None, split: str | None = None, dates: str = "random", normalize: bool = True,
                 seed: int | None = 0, stride: int = 4) -> None:
        super().__init__(store, sensors, split, dates, normalize)
        h, w = self.store.shape
        if size > min(h, w):
            raise EoSslError("crop_too_large", f"Crop size {size} exceeds the grid ({w} x {h} px).",
                             f"Use a crop size of at most {min(h, w)}.")
        self.size, self.length, self.seed, self.epoch = size, length, seed, 0
        mask = np.asarray(self.store.array("aoi")[::stride, ::stride]).astype(bool)
        if split is not None:
            mask &= np.asarray(self.store.array("split")[::stride, ::stride]) == SPLITS[split]
        rows, cols = np.nonzero(mask)
        if rows.size == 0:
            raise EoSslError("no_samples", f"No pixel of {self.store.path} is in the AOI"
                             + (f" and the {split} split." if split else "."), "Check the AOI and the split.")
        half = size // 2
        self.centres = np.stack([np.clip(rows * stride, half, h - size + half),
                                 np.clip(cols * stride, half, w - size + half)], axis=1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    #: whether :meth:`__getitems__` reads whole batches as stored (see the module docstring)
    raw_batches = False

    _rng: tuple[int, np.random.Generator] | None = None

    def _origin(self, i: int) -> tuple[int, int, np.random.Generator]:
        if self.seed is None:  # one generator per process, seeded from the OS once (not per sample: ~0.1 ms each)
            if self._rng is None or self._rng[0] != os.getpid():
                self._rng = (os.getpid(), np.random.default_rng())
            rng = self._rng[1]
        else:
            rng = np.random.default_rng((self.seed, self.epoch, i))
        r, c = self.centres[rng.integers(len(self.centres))]
        return int(r) - self.size // 2, int(c) - self.size // 2, rng

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        r, c, rng = self._origin(i)
        return self.read(r, c, self.size, rng)

    def __getitems__(self, indices: Sequence[int]) -> RawBatch | list[dict[str, torch.Tensor]]:
        """The crops of ``indices`` (the same ones :meth:`__getitem__` gives): a :class:`RawBatch` when
        ``raw_batches`` is on, else a list of samples."""
        if not self.raw_batches:
            return [self[i] for i in indices]
        n, size = len(indices), self.size
        origins = [self._origin(int(i)) for i in indices]
        out = RawBatch(pos=torch.tensor([[r, c] for r, c, _ in origins], dtype=torch.int64))
        dates: dict[str, list[slice]] = {s: [] for s in self.sensors}
        for r, c, rng in origins:  # the same date choice as read(), sample by sample
            sl = (slice(r, r + size), slice(c, c + size))
            t_s2 = self._pick_date(self.store.array("s2_valid"), sl, rng) if (
                self.dates == "random" and "s2" in self.sensors) else None
            for sensor in self.sensors:
                if self.dates == "all":
                    dates[sensor].append(slice(None))
                    continue
                if sensor == "s2":
                    t = t_s2
                elif t_s2 is None:
                    t = self._pick_date(self.store.array(f"{sensor}_valid"), sl, rng)
                else:
                    t = int(np.argmin(np.abs(self._ord[sensor] - self._ord["s2"][t_s2])))
                dates[sensor].append(slice(t, t + 1))
        for sensor in self.sensors:
            arr, valid = self.store.array(sensor), self.store.array(f"{sensor}_valid")
            n_t = arr.shape[2] if self.dates == "all" else 1
            xt, x = shared_tensor((n, size, size, n_t, arr.shape[3]), arr.dtype)
            vt, v = shared_tensor((n, size, size, n_t), np.dtype(np.uint8))
            doy = np.empty((n, n_t), np.int64)
            for b, ((r, c, _), t_idx) in enumerate(zip(origins, dates[sensor])):
                x[b] = arr[r:r + size, c:c + size, t_idx]
                v[b] = valid[r:r + size, c:c + size, t_idx]
                doy[b] = self._doy[sensor][t_idx]
            spec = self.specs[sensor]
            mean, std = (spec.mean, spec.std) if self.normalize else (np.zeros(arr.shape[3]), np.ones(arr.shape[3]))
            out[sensor], out[f"{sensor}_valid"] = _transportable(xt), vt
            if xt.dtype == torch.uint16:
                out[f"{sensor}_unsigned"] = torch.ones(n, dtype=torch.bool)
            out[f"{sensor}_doy"] = torch.from_numpy(doy)
            out[f"{sensor}_mean"] = torch.from_numpy(np.repeat(np.asarray(mean, np.float32)[None], n, axis=0))
            out[f"{sensor}_std"] = torch.from_numpy(np.repeat(np.asarray(std, np.float32)[None], n, axis=0))
        aoi_t, aoi = shared_tensor((n, size, size), np.dtype(bool))
        for b, (r, c, _) in enumerate(origins):
            aoi[b] = self.store.array("aoi")[r:r + size, c:c + size]
        out["aoi"] = aoi_t
        if self.has_labels:
            label_t, label = shared_tensor((n, size, size), np.dtype(np.int16))
            for b, (r, c, _) in enumerate(origins):
                sl = (slice(r, r + size), slice(c, c + size))
                label[b] = self.store.array("labels")[sl]
                if self.split is not None:
                    label[b][self.store.array("split")[sl] != SPLITS[self.split]] = -1
            out["label"] = label_t
        return out


class SlidingWindowDataset(_CubeBase):
    """Windows of ``size`` every ``stride`` pixels covering the whole grid (the last ones flush with the edge).

    Windows with no AOI pixel are skipped (and, with ``split``, windows with no pixel of that split).
    """

    def __init__(self, store: ChipStore | str, size: int = 64, stride: int | None = None, *,
                 sensors: Sequence[str] | None = None, split: str | None = None, dates: str = "all",
                 normalize: bool = True) -> None:
        super().__init__(store, sensors, split, dates, normalize)
        h, w = self.store.shape
        self.size = min(size, h, w)
        stride = stride or self.size
        rows = sorted(set(list(range(0, h - self.size + 1, stride)) + [h - self.size]))
        cols = sorted(set(list(range(0, w - self.size + 1, stride)) + [w - self.size]))
        aoi, split_arr = self.store.array("aoi"), self.store.array("split")
        keep = []
        for r in rows:
            for c in cols:
                sl = (slice(r, r + self.size), slice(c, c + self.size))
                ok = np.asarray(aoi[sl]).any()
                if ok and split is not None:
                    ok = (np.asarray(split_arr[sl]) == SPLITS[split]).any()
                if ok:
                    keep.append((r, c))
        self.positions = keep

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        r, c = self.positions[i]
        return self.read(r, c, self.size, np.random.default_rng((0, i)))


class ChipDataset(Dataset):
    """Chips of a ``chips`` store: ``s2`` (1, C, H, W) normalised, ``label`` a class id, and ``mask`` (H, W)
    class ids (-1 = ignore) when the store came from an exported dataset. ``s2`` holds every channel of the
    chips, S1 and extra dates included: the store's ``chips.channels`` says which sensor/band/date each is."""

    def __init__(self, store: ChipStore | str, split: str | None = None, normalize: bool = True,
                 indices: Sequence[int] | None = None) -> None:
        self.store = store if isinstance(store, ChipStore) else ChipStore(store)
        if self.store.kind != "chips":
            raise EoSslError("wrong_store_kind", f"{self.store.path} holds a cube, not chips.",
                             "Use RandomCropDataset or SlidingWindowDataset for cubes.")
        labels = np.asarray(self.store.array("chip_labels"))
        idx = np.arange(len(labels))
        if split is not None:
            idx = idx[np.asarray(self.store.array("chip_split")) == SPLITS[split]]
        self.indices = np.asarray(indices if indices is not None else idx)
        self.labels = labels
        self.normalize = normalize
        self.spec = store_spec(self.store, "s2")  # every channel of the chips: the store's statistics

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        j = int(self.indices[i])
        x = chip_values(self.store, j)  # (C, H, W)
        if self.normalize:
            self.spec.normalize(x)
        out = {"s2": torch.from_numpy(x[None]), "label": torch.tensor(int(self.labels[j]))}
        masks = self.store.array("chip_masks")
        if masks is not None:  # an exported dataset: per-pixel class ids for segmentation, -1 = ignore
            out["mask"] = torch.from_numpy(np.asarray(masks[j]).astype(np.int64))
        return out
