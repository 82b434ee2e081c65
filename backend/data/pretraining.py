"""Training data for the image-level SSL methods: one or several chip stores as one ``Dataset``.

- ``cube`` stores (``prepare --s2 ... [--s1 ...]``): random crops with one random date per sample
  (``RandomCropDataset(dates="random")``: an S2 date and the S1 date nearest to it, so the two sensors show the
  same place at about the same time);
- ``chips`` stores (``prepare --chips``, EuroSAT-style): every chip (all splits: labels are not used).

Several stores are concatenated (``ConcatDataset``) after matching their bands by name: the S2 bands all stores
share (or ``--bands``), in the first store's order; S1 as VV, VH. A store with bands the others lack has them
dropped with a warning; a store without Sentinel-1 when the method needs it is an error (``s1_missing``).

Samples are dicts ``{"s2": (C_s2, H, W), "s1": (2, H, W)}`` of standardised float32 (each store with its own
statistics, as ``prepare`` computed them). All samples of a run have the same size: the chip size when there are
chip stores (all the same), else ``crop``; the methods' random resized crop brings every view to ``crop``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from backend.data.bands import S1_BANDS
from backend.data.chipstore import ChipStore
from backend.data.datasets import ChipDataset, RandomCropDataset, RawBatch
from backend.errors import EoSslError
from backend.events import Events

#: random crops per epoch of each cube store when ``--epoch-length`` is not given
DEFAULT_CROPS_PER_CUBE = 512


class _Select(Dataset):
    """A store's dataset reduced to the wanted bands, in the run's order, without the time axis."""

    def __init__(self, base: Dataset, band_idx: dict[str, list[int]], length: int | None = None) -> None:
        self.base = base
        self.band_idx = band_idx
        self.n = len(base)  # type: ignore[arg-type]
        self.length = length if length is not None else self.n

    def __len__(self) -> int:
        return self.length

    def _index(self, i: int) -> int:
        # a chip store resampled to ``length`` samples per epoch: every chip once, then random ones; with fewer
        # samples than chips, a random chip each time (so no chip is left out for the whole run)
        return i if (i < self.n and self.length >= self.n) else int(torch.randint(self.n, ()))

    @property
    def raw_batches(self) -> bool | None:
        """Whether whole batches are read as stored (None: the store's dataset cannot; see
        :mod:`backend.data.datasets`)."""
        return getattr(self.base, "raw_batches", None)

    @raw_batches.setter
    def raw_batches(self, on: bool) -> None:
        if hasattr(self.base, "raw_batches"):
            self.base.raw_batches = on

    def __getitems__(self, indices: list[int]) -> RawBatch | list[dict[str, torch.Tensor]]:
        """A batch of the wanted bands, one date: a :class:`RawBatch` of (B, h, w, C) values as stored when the
        store's dataset reads raw batches (:func:`backend.data.datasets.standardize` finishes it on the device),
        else a list of samples."""
        if not self.raw_batches:
            return [self[i] for i in indices]
        batch = self.base.__getitems__([self._index(i) for i in indices])  # type: ignore[attr-defined]
        out = RawBatch()
        for sensor, idx in self.band_idx.items():
            x = batch[sensor][:, :, :, 0]  # one date: (B, h, w, C)
            every = idx == list(range(x.shape[-1]))
            out[sensor] = x if every else x[..., idx]
            out[f"{sensor}_valid"] = batch[f"{sensor}_valid"][:, :, :, 0]
            if f"{sensor}_unsigned" in batch:
                out[f"{sensor}_unsigned"] = batch[f"{sensor}_unsigned"]
            for key in ("mean", "std"):
                stat = batch[f"{sensor}_{key}"]
                out[f"{sensor}_{key}"] = stat if every else stat[:, idx]
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        sample = self.base[self._index(i)]
        out = {}
        for sensor, idx in self.band_idx.items():
            x = sample[sensor][0]  # (C, H, W): one date
            out[sensor] = x[idx] if idx != list(range(x.shape[0])) else x
        return out


@dataclass
class SSLData:
    dataset: Dataset
    stores: list[ChipStore]
    bands: dict[str, list[str]]
    sample_size: int
    lengths: list[int]
    normalization: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        inputs: list[Any] = []
        aois = []
        for s in self.stores:
            prov = s.manifest.get("provenance", {})
            inputs.extend(prov.get("inputs", []) if isinstance(prov.get("inputs"), list) else [prov.get("inputs")])
            if s.manifest.get("aoi", {}).get("wkt"):
                aois.append(s.manifest["aoi"]["wkt"])
        return {"data": [str(s.path) for s in self.stores], "inputs": [i for i in inputs if i],
                "aoi": aois[0] if len(aois) == 1 else (aois or None), "poi": None,
                "store_kinds": [s.kind for s in self.stores], "samples_per_epoch": self.lengths}

    def grid_resolution(self) -> float | None:
        for s in self.stores:
            res = s.manifest.get("grid", {}).get("resolution")
            if res:
                return float(res[0] if isinstance(res, (list, tuple)) else res)
        return None


def _combined_stats(stores: Sequence[ChipStore], sensor: str, bands: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per-band mean/std over all stores (pooled by pixel count): what ``model.json`` records.

    Training standardised each store with its own statistics; this is the one set a user of the model applies."""
    out: dict[str, dict[str, float]] = {}
    for b in bands:
        rows = [s.stats(sensor)[b] for s in stores]
        w = np.array([float(r.get("count") or 1.0) for r in rows])
        m = np.array([float(r["mean"]) for r in rows])
        sd = np.array([float(r["std"]) for r in rows])
        mean = float((w * m).sum() / w.sum())
        var = float((w * (sd**2 + m**2)).sum() / w.sum() - mean**2)
        entry = {"mean": mean, "std": math.sqrt(max(var, 1e-12))}
        if len(rows) == 1:
            entry.update({k: float(v) for k, v in rows[0].items() if k in ("p02", "p98", "count") and v is not None})
        out[b] = entry
    return out


def open_stores(paths: Sequence[str | Path]) -> list[ChipStore]:
    stores = []
    for p in paths:
        if not Path(p).exists():
            raise EoSslError("input_not_found", f"Chip store {p} does not exist.",
                             "Build it first with `eo-ssl prepare ... --out DIR`, then pass DIR to --data.")
        stores.append(ChipStore(p))
    return stores


def build_ssl_data(paths: Sequence[str | Path], *, need_s1: bool, stack_s1: bool = False, crop: int = 64,
                   epoch_length: int | None = None, s2_bands: Sequence[str] | None = None,
                   required_s2: Sequence[str] = (), events: Events | None = None, method: str = "",
                   hint_no_s1: str = "") -> SSLData:
    """The run's dataset from chip stores (see the module docstring).

    ``need_s1``: every sample must carry ``s1`` (RS-BYOL with S1 views, or S1 stacked with ``stack_s1``).
    """
    stores = open_stores(paths)
    for s in stores:
        if "s2" not in s.sensors:
            raise EoSslError("sensor_missing", f"{s.path} has no Sentinel-2 data; pre-training needs it.",
                             "Prepare the store with --s2 ...")
        if need_s1 and "s1" not in s.sensors:
            raise EoSslError("s1_missing", f"{s.path} has no Sentinel-1 data, and {method or 'this method'} needs "
                             "Sentinel-1 (VV, VH) of the same place.",
                             hint_no_s1 or "Prepare the store with --s2 ... --s1 ..., or train on Sentinel-2 only.")
    # -- bands -------------------------------------------------------------------------------------------------
    if s2_bands:
        wanted = [b.strip().upper() for b in s2_bands if b.strip()]
        for s in stores:
            missing = [b for b in wanted if b not in s.bands("s2")]
            if missing:
                raise EoSslError("missing_bands", f"{s.path} has no Sentinel-2 band(s) {', '.join(missing)} "
                                 f"(it has {', '.join(s.bands('s2'))}).", "Choose --bands among those.")
        common = wanted
    else:
        common = [b for b in stores[0].bands("s2") if all(b in s.bands("s2") for s in stores[1:])]
    missing_req = [b for b in required_s2 if b not in common]
    if missing_req:
        raise EoSslError("missing_bands", f"{method} needs Sentinel-2 band(s) {', '.join(missing_req)}, which "
                         f"{'the stores do not all have' if len(stores) > 1 else 'the store lacks'}.",
                         "Prepare the stores with all Sentinel-2 bands.")
    dropped = {str(s.path): [b for b in s.bands("s2") if b not in common] for s in stores}
    dropped = {k: v for k, v in dropped.items() if v}
    if dropped and events is not None and not s2_bands:
        for path, bands in dropped.items():
            events.warning("bands_dropped", f"{path}: band(s) {', '.join(bands)} are not in every store; "
                           "training uses the bands all stores share.")
    if not common:
        raise EoSslError("missing_bands", "The stores share no Sentinel-2 band.", "Pass stores of the same sensor.")
    bands: dict[str, list[str]] = {"s2": common}
    use_s1 = need_s1 or stack_s1
    if use_s1:
        for s in stores:
            lacking = [b for b in S1_BANDS if b not in s.bands("s1")]
            if lacking:
                raise EoSslError("missing_bands", f"{s.path} has no Sentinel-1 {', '.join(lacking)}.",
                                 "Prepare the store with both polarisations (VV, VH).")
        bands["s1"] = list(S1_BANDS)
    # -- sample size -------------------------------------------------------------------------------------------
    chip_sizes = {tuple(np.asarray(s.array("chips")).shape[2:]) for s in stores if s.kind == "chips"}
    if len(chip_sizes) > 1:
        raise EoSslError("chip_size_mismatch", f"The chip stores have chips of different sizes {sorted(chip_sizes)}.",
                         "Pre-train on stores with chips of one size.")
    if chip_sizes:
        (h, w), = chip_sizes
        if h != w:
            raise EoSslError("chip_size_mismatch", f"Chips are {w} x {h}: square chips only.", "")
        size = int(h)
    else:
        size = int(crop)
    # -- datasets ----------------------------------------------------------------------------------------------
    sizes = []
    for s in stores:
        if s.kind == "chips":
            sizes.append(int(np.asarray(s.array("chip_labels")).shape[0]))
        else:
            aoi = np.asarray(s.array("aoi")[::4, ::4])
            sizes.append(max(1, int(aoi.sum()) * 16 // (size * size)))
    if epoch_length:
        total = sum(sizes)
        lengths = [max(1, int(round(epoch_length * n / total))) for n in sizes]
    else:
        lengths = [n if s.kind == "chips" else DEFAULT_CROPS_PER_CUBE for s, n in zip(stores, sizes)]
    parts: list[Dataset] = []
    for s, n in zip(stores, lengths):
        idx = {"s2": [s.bands("s2").index(b) for b in common]}
        sensors = ["s2"]
        if use_s1:
            idx["s1"] = [s.bands("s1").index(b) for b in S1_BANDS]
            sensors.append("s1")
        if s.kind == "chips":
            parts.append(_Select(ChipDataset(s), idx, length=n))
        else:
            parts.append(_Select(RandomCropDataset(s, size=size, length=n, sensors=sensors, dates="random",
                                                   seed=None), idx))
    dataset: Dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    norm = {sensor: _combined_stats(stores, sensor, b) for sensor, b in bands.items()}
    return SSLData(dataset=dataset, stores=stores, bands=bands, sample_size=size, lengths=lengths,
                   normalization=norm, dropped=dropped)
