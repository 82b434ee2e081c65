"""The data of the pixel time-series pre-training (``ts-byol``, ``ts-barlow``): every observed pixel of one or several
cube stores, as its series on one season calendar.

- The calendar and the bands are the first store's, as the pixel classifiers choose them
  (:func:`backend.pixel.data.pixel_input`: ``period``, ``season``, ``bands``); the other stores are read on the same
  calendar, each in its own best covered season (:meth:`backend.pixel.features.PixelInput.year_for`: what a pixel
  classifier does with another year), and must have its bands (``missing_bands``) and cover its periods
  (``period_not_covered``).
- A sample is one pixel with at least one valid observation in the calendar's periods (any sensor): its **raw**
  series (P, C) (:func:`backend.pixel.data.read_inputs`, the per-period median composites, un-standardised: the
  series encoder normalises itself; NaN where a period holds no observation), channels sensor by sensor, and the
  months of its periods.
- Whole batches are read in one call (:meth:`PixelSeries.__getitems__`: the batch's pixels of a store in one
  fancy-indexed read of the memory maps, in position order), no crops: a batch of 256 pixels of the Flanders patch
  (76 dates) takes a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from backend.data.chipstore import ROW_CHUNK, ChipStore
from backend.data.datasets import RawBatch
from backend.data.pretraining import _combined_stats, open_stores
from backend.errors import EoSslError
from backend.models.series_encoder import series_from_blocks
from backend.pixel.data import date_indices, pixel_input, read_inputs
from backend.pixel.features import PixelInput


class SeriesBatch(RawBatch):
    """A batch of pixel series read in one call: ``values`` (B, P, C) float32 raw, NaN where unobserved, ``months``
    (B, P) int64 (0..11). A :class:`RawBatch`, so the loader's ``collate`` passes it as it is."""


def observed_pixels(store: ChipStore, inp: PixelInput) -> np.ndarray:
    """Flat indices (``row * width + col``) of the pixels with at least one valid observation (inside the AOI) in
    the calendar's periods, any sensor."""
    h, w = store.shape
    ok = np.zeros((h, w), bool)
    for block in inp.blocks:
        t, _ = date_indices(store, block, inp)
        valid = store.array(f"{block.sensor}_valid")
        if valid is None or not t:
            continue
        for r in range(0, h, ROW_CHUNK):
            ok[r:r + ROW_CHUNK] |= np.asarray(valid[r:r + ROW_CHUNK][:, :, t]).any(axis=2)
    return np.flatnonzero(ok)


def read_series(store: ChipStore, inp: PixelInput, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(N, P, C) raw series of the pixels (``rows``, ``cols``) on ``inp``'s calendar: the one read of the pixel
    classifiers, un-standardised."""
    values, _ = series_from_blocks(read_inputs(store, inp, rows, cols), inp.blocks)
    return values.numpy()


class PixelSeries(Dataset):
    """Pixels of several stores as one dataset (see the module docstring); ``order`` maps the dataset's indices to
    pixels (``--epoch-length``: a fixed seeded sample), else index ``i`` is the ``i``-th observed pixel."""

    #: reads whole batches (:meth:`__getitems__`): the runner then reads in the main process on a CPU run
    raw_batches = False

    def __init__(self, stores: Sequence[ChipStore], inp: PixelInput, pixels: Sequence[np.ndarray],
                 months: Sequence[Sequence[int]], order: np.ndarray | None = None) -> None:
        self.stores = list(stores)
        self.input = inp
        self.pixels = [np.asarray(p, np.int64) for p in pixels]
        self.offsets = np.cumsum([0, *(len(p) for p in self.pixels)])
        self.months = torch.tensor(np.asarray(months, np.int64))  # (stores, P)
        self.order = order

    def __len__(self) -> int:
        return int(len(self.order) if self.order is not None else self.offsets[-1])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([i])
        return {"values": batch["values"][0], "months": batch["months"][0]}

    def __getitems__(self, indices: Sequence[int]) -> SeriesBatch:
        idx = np.asarray(indices, np.int64)
        if self.order is not None:
            idx = self.order[idx]
        which = np.searchsorted(self.offsets, idx, side="right") - 1
        p = self.months.shape[1]
        c = sum(len(b.bands) for b in self.input.blocks)
        values = np.empty((len(idx), p, c), np.float32)
        for k in np.unique(which):
            sel = np.nonzero(which == k)[0]
            flat = self.pixels[k][idx[sel] - self.offsets[k]]
            order = np.argsort(flat, kind="stable")
            rows, cols = np.divmod(flat[order], self.stores[k].shape[1])
            values[sel[order]] = read_series(self.stores[k], self.input, rows, cols)
        return SeriesBatch(values=torch.from_numpy(values), months=self.months[torch.from_numpy(which)])


@dataclass
class SeriesData:
    """The run's dataset and what ``model.json`` says of its input."""

    dataset: PixelSeries
    stores: list[ChipStore]
    input: PixelInput
    channels: list[tuple[str, str]]
    normalization: dict[str, dict[str, dict[str, float]]]
    years: list[int]
    lengths: list[int]

    @property
    def months(self) -> list[int]:
        assert self.input.calendar is not None and self.input.year is not None
        return self.input.calendar.months(self.input.year)

    def calendar(self) -> dict[str, Any]:
        """``model.json`` ``input.calendar``: the first store's calendar and season year."""
        assert self.input.calendar is not None
        return {**self.input.calendar.to_dict(), "year": self.input.year}

    def provenance(self) -> dict[str, Any]:
        inputs: list[Any] = []
        for s in self.stores:
            prov = s.manifest.get("provenance", {})
            inputs.extend(prov.get("inputs", []) if isinstance(prov.get("inputs"), list) else [prov.get("inputs")])
        assert self.input.calendar is not None
        return {"data": [str(s.path) for s in self.stores], "inputs": [i for i in inputs if i],
                "store_kinds": [s.kind for s in self.stores], "pixels": self.lengths,
                "seasons": [{"store": str(s.path), "year": y, "periods": self.input.calendar.labels(y)}
                            for s, y in zip(self.stores, self.years)]}

    def grid_resolution(self) -> float | None:
        res = self.stores[0].manifest.get("grid", {}).get("resolution")
        return float(res[0] if isinstance(res, (list, tuple)) else res) if res else None


def build_series_data(paths: Sequence[str | Path], *, period: str = "month", season: str | None = None,
                      bands: Sequence[str] | None = None, epoch_length: int | None = None, seed: int = 0,
                      method: str = "ts-byol") -> SeriesData:
    """The stores at ``paths`` as one :class:`PixelSeries` (see the module docstring)."""
    stores = open_stores(paths)
    for st in stores:
        if st.kind != "cube":
            raise EoSslError("wrong_store_kind", f"{method} pre-trains on pixel time series of a prepared cube; "
                             f"{st.path} holds chips.", "Prepare a time series with eo-ssl prepare --s2 ... --s1 ... "
                             "(several dates: --poi).")
    inp = pixel_input(stores[0], period=period, season=season, bands=list(bands) if bands else None)
    if inp.calendar is None or inp.year is None:
        raise EoSslError("wrong_store_kind", f"{method} reads a time series on a season calendar; {stores[0].path} "
                         f"holds {'one date' if period != 'dates' else 'no calendar (--set period=dates)'}.",
                         "Prepare several dates (--poi over a season) and keep --set period=month or Nd.")
    channels = [(b.sensor, band) for b in inp.blocks for band in b.bands]
    for st in stores[1:]:
        lacking = [f"{s} {b}" for s, b in channels if s not in st.sensors or b not in st.bands(s)]
        if lacking:
            raise EoSslError("missing_bands", f"{st.path} lacks {', '.join(lacking)}, which {stores[0].path} has.",
                             "Pre-train on stores with the same bands, or choose shared ones with --bands.")
    lead = inp.blocks[0].sensor
    years = [inp.year_for(st.dates(lead)) if lead in st.sensors else inp.year for st in stores]
    try:
        pixels = [observed_pixels(st, inp) for st in stores]
    except EoSslError as exc:
        if exc.code != "period_not_covered":
            raise
        raise EoSslError(exc.code, exc.message, "Pre-train on a shorter season (--set season=MM-DD/MM-DD) or a "
                         "coarser calendar (--set period=month), or on stores that cover every period.") from exc
    if not any(len(p) for p in pixels):
        raise EoSslError("no_samples", "No pixel of the stores has a valid observation in the season "
                         f"{inp.calendar.describe()}.", "Use stores with cloud-free observations in the season.")
    order = None
    total = sum(len(p) for p in pixels)
    if epoch_length:
        rng = np.random.default_rng(seed)
        order = np.concatenate([rng.permutation(total) for _ in range(-(-epoch_length // total))])[:epoch_length]
    normalization = {b.sensor: _combined_stats(stores, b.sensor, b.bands) for b in inp.blocks}
    dataset = PixelSeries(stores, inp, pixels, [inp.calendar.months(y) for y in years], order)
    return SeriesData(dataset, stores, inp, channels, normalization, years, [len(p) for p in pixels])
