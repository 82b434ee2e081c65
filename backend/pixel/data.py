"""Labelled pixels of a chip store for the pixel classifiers: which pixels, their input vector, their features.

- :func:`pixel_input`: the model's input layout from a cube store: every sensor, its bands (all, or those asked
  for), on a season calendar (monthly composites by default for a time series, see :mod:`backend.data.calendar`),
  every acquisition date (``period="dates"``) or one date, with the store's per-band statistics.
- :func:`labelled_pixels`: the labelled pixels of a split (and of the parcels kept at a label fraction) that have at
  least one valid observation, with their parcel; optionally a sample balanced over parcels, so that one large
  polygon does not outweigh the others.
- :func:`read_inputs` / :func:`compute_features`: the (N, D) input of given pixels, and their (N, F) features through
  a :class:`~backend.pixel.features.PixelFeatures` module: pixel by pixel when the features are pointwise, through
  windows around the pixels (:func:`windowed`) when an embedding needs spatial context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from backend.data.calendar import DEFAULT_PERIOD, PERIOD_DATES, composite_periods, parse_period, season_calendar
from backend.data.chipstore import ROW_CHUNK, SPLITS, ChipStore
from backend.data.dates import choose_date
from backend.data.feature_presets import FEATURES
from backend.errors import EoSslError
from backend.pixel.features import PixelFeatures, PixelInput, SensorBlock

#: window side and margin (px) when features need spatial context: the margin keeps tile-border effects of the
#: encoder's padding away from the pixels read
WINDOW, MARGIN = 256, 32


def pixel_input(store: ChipStore, date: str | None = None, sensors: list[str] | None = None,
                period: str = DEFAULT_PERIOD, season: str | None = None, bands: list[str] | None = None
                ) -> PixelInput:
    """The input layout on ``store``: with ``date`` the one acquisition of :func:`choose_date`; else, for a time
    series (a sensor with several dates), the season calendar of ``period`` (``month``, ``<N>d``) over ``season``
    (default: the store's POI, else its 12 best covered months), or every acquisition date (``period="dates"``).
    ``bands``: keep only these (canonical names, S2 and S1 alike; a model of the bands that several products share)."""
    if store.kind != "cube":
        raise EoSslError("wrong_store_kind", f"{store.path} holds chips; the pixel classifier trains on a prepared "
                         "cube with rasterised parcels.", "Prepare a cube with --parcels, or use --task "
                         "classification.")
    sensors = sensors or store.sensors
    period = parse_period(period)
    dated = [s for s in sensors if s != FEATURES]  # a feature raster (an annual embedding) has no date to choose
    choice = choose_date(store, dated, date) if date and dated else None
    keep = _band_filter(store, sensors, bands)
    sensors = [s for s in sensors if keep[s]]
    calendar, year = None, None
    if choice is None and period != PERIOD_DATES and any(len(store.dates(s)) > 1 for s in sensors):
        lead = "s2" if "s2" in sensors else sensors[0]
        observed_dates = {s: _observed_dates(store, s) for s in sensors}  # one scan of each validity array
        calendar, year = season_calendar(season, period, observed_dates[lead], store.manifest.get("poi"))
    blocks = []
    for s in sensors:
        stats = store.stats(s)
        b = keep[s]
        if s == FEATURES:
            dates = store.dates(s)  # read as it is, beside any calendar
        elif choice is not None:
            dates = [store.dates(s)[choice.index[s]]]
        elif calendar is not None:
            assert year is not None
            dates = list(calendar.labels(year))
        else:
            dates = store.dates(s)
        observed = calendar.covered(observed_dates[s], year) if calendar is not None and year else None
        if observed is not None and not any(observed):
            raise EoSslError("period_not_covered", f"No {s.upper()} acquisition of {store.path} falls in the season "
                             f"{calendar.describe()} of {year}.", "Give a --season the store's dates cover, or "
                             "leave the sensor out with --bands.")
        blocks.append(SensorBlock(s, b, dates, [float(stats[x]["mean"]) for x in b],
                                  [max(float(stats[x]["std"]), 1e-6) for x in b], observed))
    return PixelInput(blocks, calendar, year)


def input_from_args(store: ChipStore, args: Any, sensors: list[str] | None = None) -> Any:
    """The pixel input of ``finetune``/``compare``'s options: ``--date``, ``--period``, ``--season``, ``--bands``
    (``sensors``: these blocks of the store only, e.g. compare's feature sets)."""
    bands = [b for b in (getattr(args, "bands", None) or "").split(",") if b.strip()]
    if bands and sensors:  # each feature set keeps the asked bands it holds
        held = {b for s in sensors for b in store.bands(s)}
        bands = [b for b in bands if b in held] or None
    return pixel_input(store, args.date, sensors=sensors, period=getattr(args, "period", None) or "month",
                       season=getattr(args, "season", None), bands=bands or None)


def feature_sets(store: ChipStore) -> list[tuple[str, list[str]]]:
    """What ``compare`` sets against each other on a store with feature rasters: (label, sensors) of the spectra
    alone, the features alone and both; one set (every sensor) without features."""
    spectra = [s for s in store.sensors if s != FEATURES]
    if FEATURES not in store.sensors or not spectra:
        return [("", list(store.sensors))]
    return [("spectra", spectra), ("features", [FEATURES]), ("spectra + features", [*spectra, FEATURES])]


def _band_filter(store: ChipStore, sensors: list[str], bands: list[str] | None) -> dict[str, list[str]]:
    """Each sensor's bands to keep (all without ``bands``); an asked band the store lacks is ``missing_bands``."""
    if not bands:
        return {s: list(store.bands(s)) for s in sensors}
    from backend.data.bands import canonical_s1, canonical_s2

    wanted = [canonical_s2(b) or canonical_s1(b) or b.strip() for b in bands]
    have = {b for s in sensors for b in store.bands(s)}
    missing = [b for b in wanted if b not in have]
    if missing:
        raise EoSslError("missing_bands", f"--bands: the store has no {', '.join(missing)} (it has "
                         f"{', '.join(sorted(have))}).", "Name bands the store holds, e.g. --bands B05,B06,B07,B8A,"
                         "B11,B12,VV,VH for a 20 m product.")
    return {s: [b for b in store.bands(s) if b in wanted] for s in sensors}


def _observed_dates(store: ChipStore, sensor: str) -> list[str | None]:
    """The sensor's dates with at least one valid observation in the store."""
    valid = store.array(f"{sensor}_valid")
    dates = store.dates(sensor)
    if valid is None:
        return dates
    any_valid = np.zeros(len(dates), bool)
    for r in range(0, valid.shape[0], ROW_CHUNK):
        any_valid |= np.asarray(valid[r:r + ROW_CHUNK]).any(axis=(0, 1))
    return [d for d, ok in zip(dates, any_valid) if ok]


def date_indices(store: ChipStore, block: SensorBlock, inp: PixelInput | None = None
                 ) -> tuple[list[int], np.ndarray | None]:
    """The store's acquisitions the block reads, and (on a calendar) the period of each; raises
    ``period_not_covered`` when a period of the model has no acquisition of the sensor in this store."""
    dates = store.dates(block.sensor)
    if inp is None or inp.calendar is None or block.sensor == FEATURES:
        return [dates.index(d) for d in block.dates], None
    lead = inp.blocks[0].sensor
    year = inp.year_for(store.dates(lead))
    period_of = inp.calendar.check_covered(block.sensor, dates, year, block.observed)
    t = np.nonzero(period_of >= 0)[0]
    return t.tolist(), period_of[t]


@dataclass
class Pixels:
    rows: np.ndarray
    cols: np.ndarray
    labels: np.ndarray
    parcels: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, idx: np.ndarray) -> Pixels:
        return Pixels(self.rows[idx], self.cols[idx], self.labels[idx], self.parcels[idx])


def _any_valid(store: ChipStore, inp: PixelInput, rows: slice) -> np.ndarray:
    ok = None
    for block in inp.blocks:
        t, _ = date_indices(store, block, inp)
        v = np.asarray(store.array(f"{block.sensor}_valid")[rows][:, :, t]).any(axis=2)
        ok = v if ok is None else ok | v
    assert ok is not None
    return ok


def labelled_pixels(store: ChipStore, inp: PixelInput, split: str | tuple[str, ...],
                    keep_parcels: np.ndarray | None = None) -> Pixels:
    """Every labelled pixel of ``split`` (one or several, or ``all``; of the kept parcels, which apply to the
    training split) with at least one valid observation."""
    splits = (split,) if isinstance(split, str) else tuple(split)
    labels, parcels, spl = store.array("labels"), store.array("parcels"), store.array("split")
    if labels is None or parcels is None or spl is None:
        raise EoSslError("no_labels", f"{store.path} has no rasterised parcels.",
                         "Prepare the store with --parcels and --class-field.")
    out: list[tuple[np.ndarray, ...]] = []
    for r in range(0, labels.shape[0], ROW_CHUNK):
        sl = slice(r, r + ROW_CHUNK)
        lab, par = np.asarray(labels[sl]), np.asarray(parcels[sl])
        sp = np.asarray(spl[sl])
        m = (lab >= 0) & (True if "all" in splits else np.isin(sp, [SPLITS[x] for x in splits]))
        if keep_parcels is not None:
            m &= (sp != SPLITS["train"]) | ((par >= 0) & keep_parcels[np.clip(par, 0, len(keep_parcels) - 1)])
        if not m.any():
            continue
        m &= _any_valid(store, inp, sl)
        rr, cc = np.nonzero(m)
        out.append((rr + r, cc, lab[rr, cc].astype(np.int64), par[rr, cc].astype(np.int64)))
    if not out:
        return Pixels(*(np.zeros(0, np.int64) for _ in range(4)))
    return Pixels(*(np.concatenate([o[i] for o in out]) for i in range(4)))


def sample_by_parcel(px: Pixels, max_pixels: int, seed: int) -> Pixels:
    """At most ``max_pixels`` pixels, spread evenly over parcels (every parcel up to the same quota), seeded."""
    if len(px) <= max_pixels:
        return px
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(px))
    parcels = px.parcels[order]
    # rank of each pixel within its parcel in the random order; keep the lowest ranks until the budget is spent
    sort = np.argsort(parcels, kind="stable")
    starts = np.r_[0, np.nonzero(np.diff(parcels[sort]))[0] + 1]
    rank = np.empty(len(px), np.int64)
    sizes = np.diff(np.r_[starts, len(px)])
    rank[sort] = np.arange(len(px)) - np.repeat(starts, sizes)
    keep = order[np.argsort(rank, kind="stable")[:max_pixels]]
    return px.take(np.sort(keep))


def read_inputs(store: ChipStore, inp: PixelInput, rows: np.ndarray | slice, cols: np.ndarray | slice
                ) -> np.ndarray:
    """The standardised input at pixels (``rows``, ``cols`` index arrays: (N, D)) or of a window (two slices:
    (D, h, w)), NaN at invalid observations, in :class:`PixelInput` order."""
    parts = []
    for block in inp.blocks:
        t, period_of = date_indices(store, block, inp)
        names = store.bands(block.sensor)
        c = [names.index(b) for b in block.bands]
        raw = np.asarray(store.array(block.sensor)[rows, cols][..., t, :], np.float32)[..., c]  # (..., T, C)
        valid = np.asarray(store.array(f"{block.sensor}_valid")[rows, cols][..., t]).astype(bool)
        z = (raw - np.asarray(block.mean, np.float32)) / np.asarray(block.std, np.float32)
        z[~valid] = np.nan
        if period_of is not None:
            z = composite_periods(z, period_of, len(block.dates))
        parts.append(z.reshape(*z.shape[:-2], -1))  # date-major: (..., T * C)
    x = np.concatenate(parts, axis=-1)
    return x if isinstance(rows, np.ndarray) else np.moveaxis(x, -1, 0)


@torch.no_grad()
def compute_features(features: PixelFeatures, store: ChipStore, inp: PixelInput, px: Pixels,
                     batch: int = 65536) -> np.ndarray:
    """(N, F) features of the pixels ``px``: pointwise features from the pixels' own input, an embedding through
    windows of ``WINDOW`` px (plus ``MARGIN``) around them."""
    features.eval()
    if features.pointwise:
        out = []
        for i in range(0, len(px), batch):
            x = torch.from_numpy(read_inputs(store, inp, px.rows[i:i + batch], px.cols[i:i + batch]))
            out.append(features(x[:, :, None, None])[:, :, 0, 0].numpy())
        return np.concatenate(out) if out else np.zeros((0, features.dim), np.float32)
    return windowed(features, features.dim, store, inp, px)


@torch.no_grad()
def windowed(fn: Callable[[torch.Tensor], torch.Tensor], dim: int, store: ChipStore, inp: PixelInput, px: Pixels,
             encoder: bool = True) -> np.ndarray:
    """(N, dim) output of a spatial ``fn`` ((1, D, h, w) input -> (1, dim, h, w)) at the pixels ``px``, computed on
    windows of ``WINDOW`` px plus ``MARGIN`` of context around the pixels read (an embedding's receptive field, a
    map's smoothing: both well inside the margin). With an ``encoder`` the windows are padded to multiples of 32."""
    h, w = store.shape
    result = np.zeros((len(px), dim), np.float32)
    win_id = (px.rows // WINDOW) * ((w + WINDOW - 1) // WINDOW) + px.cols // WINDOW
    for wid in np.unique(win_id):
        sel = np.nonzero(win_id == wid)[0]
        r0 = int(px.rows[sel[0]] // WINDOW * WINDOW)
        c0 = int(px.cols[sel[0]] // WINDOW * WINDOW)
        ra, ca = max(0, r0 - MARGIN), max(0, c0 - MARGIN)
        rb, cb = min(h, r0 + WINDOW + MARGIN), min(w, c0 + WINDOW + MARGIN)
        x = torch.from_numpy(read_inputs(store, inp, slice(ra, rb), slice(ca, cb)))[None]
        f = fn(_pad32(x) if encoder else x)[0]
        result[sel] = f[:, px.rows[sel] - ra, px.cols[sel] - ca].T.numpy()
    return result


def _pad32(x: torch.Tensor) -> torch.Tensor:
    """Pad (reflect) the right and bottom to multiples of 32, so every encoder level divides the window."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % 32, (-w) % 32
    if ph == 0 and pw == 0:
        return x
    filled = torch.nan_to_num(x, nan=0.0)
    padded = torch.nn.functional.pad(filled, (0, pw, 0, ph), mode="replicate")
    nan_mask = torch.nn.functional.pad(torch.isnan(x).float(), (0, pw, 0, ph), mode="replicate") > 0
    return padded.masked_fill(nan_mask, float("nan"))
