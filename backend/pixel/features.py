"""The per-pixel feature vector of the pixel classifiers: spectra of every date, temporal statistics, an embedding.

The model's input ``x`` is (B, D, H, W): for each sensor of :class:`PixelInput` in order, for each of its dates, its
bands, standardised with the training store's per-band mean/std, **NaN where an observation is invalid** (cloud,
nodata). :class:`PixelFeatures` turns it into (B, F, H, W):

- ``spectra``: every date's bands (NaN -> 0, the band's mean), plus NDVI per date when the bands allow; on a
  season calendar (:mod:`backend.data.calendar`: the "dates" are periods, each a composite of the observations in
  it) a period without a valid observation is filled along time (linearly between the nearest observed periods,
  the nearest one at the ends) and ``observed`` per sensor and period says which were real;
- ``stats`` (several dates): per band (and NDVI) the median, standard deviation, 10th and 90th percentile over the
  valid dates: what a season looks like, independent of which day was cloudy;
- ``embedding`` (optional): the per-pixel features of a pre-trained encoder: an image CNN (:class:`Embedding`) on
  the composite of the dates (per-band median over valid dates), its feature pyramid upsampled to full resolution
  and projected on its principal components (fitted on unlabelled pixels of the store); or a pixel time-series
  encoder (:class:`~backend.pixel.series.SeriesEmbedding`: Presto, ts-byol) on each pixel's calendar series.

Training (:mod:`backend.pixel.train`) and prediction feed the same module, so a map is exactly the classifier applied
to the cube.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from backend.data.calendar import Calendar
from backend.data.feature_presets import FEATURES
from backend.errors import EoSslError
from backend.pixel.series import SeriesEmbedding, SeriesEmbeddingSpec

#: temporal statistics per band over the valid dates (with several dates)
STATS = ("median", "std", "p10", "p90")


@dataclass
class SensorBlock:
    """One sensor's part of the input: its bands and dates (ISO or None), and per-band mean/std of the raw values."""

    sensor: str
    bands: list[str]
    dates: list[str | None]
    mean: list[float]
    std: list[float]
    #: on a season calendar: which periods the training data held an acquisition of the sensor in (the others are
    #: filled along time; a later input must cover these)
    observed: list[bool] | None = None

    @property
    def size(self) -> int:
        return len(self.bands) * len(self.dates)

    def to_dict(self) -> dict[str, Any]:
        out = {"sensor": self.sensor, "bands": self.bands, "dates": self.dates, "mean": self.mean, "std": self.std}
        if self.observed is not None:
            out["observed"] = self.observed
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SensorBlock:
        return cls(str(d["sensor"]), [str(b) for b in d["bands"]], list(d["dates"]), [float(v) for v in d["mean"]],
                   [float(v) for v in d["std"]], [bool(v) for v in d["observed"]] if d.get("observed") else None)


@dataclass
class PixelInput:
    """The layout of ``x``: sensor blocks in order, each date-major (all bands of date 0, then date 1, ...).

    With a ``calendar`` the blocks' dates are the labels of its periods in the season of ``year`` (the training
    store's), and ``x`` holds each period's composite (see :mod:`backend.data.calendar`)."""

    blocks: list[SensorBlock]
    calendar: Calendar | None = None
    year: int | None = None

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blocks)

    def offsets(self) -> list[int]:
        out, o = [], 0
        for b in self.blocks:
            out.append(o)
            o += b.size
        return out

    def block(self, sensor: str) -> SensorBlock | None:
        return next((b for b in self.blocks if b.sensor == sensor), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"blocks": [b.to_dict() for b in self.blocks]}
        if self.calendar is not None:
            out["calendar"] = {**self.calendar.to_dict(), "year": self.year}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PixelInput:
        cal = d.get("calendar")
        return cls([SensorBlock.from_dict(b) for b in d["blocks"]], Calendar.from_dict(cal) if cal else None,
                   int(cal["year"]) if cal else None)

    def year_for(self, dates: list[Any]) -> int:
        """The season a set of acquisitions is read in: the training year while it covers as many periods as any
        other (the training store itself, or another of the same year), else the best covered one."""
        assert self.calendar is not None and self.year is not None
        return self.calendar.anchor(dates, prefer=self.year)


@dataclass
class EmbeddingSpec:
    """What :class:`Embedding` computes (``model.json`` ``architecture.features.embedding``)."""

    encoder: str
    in_chans: int
    channel_mode: str  # stack | per-band
    channels: list[tuple[str, str]]  # the encoder's input channels, in order
    mean: list[float]  # the encoder's own normalisation (its pre-training statistics) per channel
    std: list[float]
    levels: list[int]  # pyramid levels used (timm features_only out_indices)
    level_channels: list[int] = field(default_factory=list)
    dim: int | None = None  # principal components kept (None: the whole pyramid)
    source: dict[str, Any] = field(default_factory=dict)  # the package it came from (path, sha256, method)

    def to_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder, "in_chans": self.in_chans, "channel_mode": self.channel_mode,
                "channels": [list(c) for c in self.channels], "mean": self.mean, "std": self.std,
                "levels": self.levels, "level_channels": self.level_channels, "dim": self.dim, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbeddingSpec:
        return cls(str(d["encoder"]), int(d["in_chans"]), str(d.get("channel_mode") or "stack"),
                   [(str(s), str(b)) for s, b in d["channels"]], [float(v) for v in d["mean"]],
                   [float(v) for v in d["std"]], [int(v) for v in d["levels"]],
                   [int(v) for v in d.get("level_channels") or []], d.get("dim"), dict(d.get("source") or {}))

    @property
    def pyramid_dim(self) -> int:
        return int(sum(self.level_channels))

    @property
    def out_dim(self) -> int:
        return int(self.dim) if self.dim else self.pyramid_dim


def _ndvi_bands(block: SensorBlock) -> tuple[int, int] | None:
    if block.sensor == "s2" and "B04" in block.bands and "B08" in block.bands:
        return block.bands.index("B04"), block.bands.index("B08")
    return None


def nan_quantile(x: torch.Tensor, q: float, dim: int) -> torch.Tensor:
    """``torch.nanquantile`` (linear interpolation) that gives 0 where every value is NaN."""
    out = torch.nanquantile(x, q, dim=dim)
    return torch.nan_to_num(out, nan=0.0)


def fill_along_time(v: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """NaN entries of ``v`` filled along ``dim`` by linear interpolation between the nearest non-NaN neighbours, the
    nearest one past either end; 0 where the whole series is NaN."""
    v = v.movedim(dim, -1)
    n = v.shape[-1]
    ok = ~torch.isnan(v)
    pos = torch.arange(n, device=v.device).expand_as(v)
    prev = torch.where(ok, pos, torch.full_like(pos, -1)).cummax(-1).values
    nxt = torch.where(ok, pos, torch.full_like(pos, n)).flip(-1).cummin(-1).values.flip(-1)
    has_prev, has_next = prev >= 0, nxt < n
    vals = torch.nan_to_num(v, nan=0.0)
    a = vals.gather(-1, prev.clamp(0, n - 1))
    b = vals.gather(-1, nxt.clamp(0, n - 1))
    span = (nxt - prev).clamp_min(1).to(v.dtype)
    t = (pos - prev).to(v.dtype) / span
    both = a + (b - a) * t
    out = torch.where(has_prev & has_next, both, torch.where(has_prev, a, torch.where(has_next, b,
                                                                                    torch.zeros_like(a))))
    return torch.where(ok, v, out).movedim(-1, dim)


class Embedding(nn.Module):
    """(B, C, H, W) encoder-normalised composite -> (B, F, H, W) per-pixel features of a timm encoder.

    The encoder's feature maps at ``levels`` (strides 2, 4, 8, ... for a ResNet) are upsampled bilinearly to the input
    size and concatenated; with ``dim`` they are projected on ``dim`` principal components (``pca_mean``,
    ``pca_components``, fitted by :mod:`backend.pixel.train` on unlabelled pixels). ``per-band`` encoders (RS-BYOL's
    1-channel encoder) embed each band alone and average every level over bands.
    """

    def __init__(self, spec: EmbeddingSpec) -> None:
        super().__init__()
        import timm

        self.spec = spec
        try:
            self.encoder = timm.create_model(spec.encoder, pretrained=False, in_chans=spec.in_chans,
                                             features_only=True, out_indices=tuple(spec.levels))
        except (RuntimeError, ValueError, KeyError) as exc:
            raise EoSslError("unknown_encoder", f"Encoder {spec.encoder!r} has no feature pyramid: {exc}",
                             "Use a timm CNN such as resnet18 or resnet50.") from exc
        if not spec.level_channels:
            spec.level_channels = [int(c) for c in self.encoder.feature_info.channels()]
        self.register_buffer("in_mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("in_std", torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1))
        if spec.dim:
            self.register_buffer("pca_mean", torch.zeros(spec.pyramid_dim))
            self.register_buffer("pca_components", torch.zeros(spec.dim, spec.pyramid_dim))

    def load_encoder(self, timm_state: dict[str, torch.Tensor]) -> int:
        """Load encoder weights named as timm names them (a pre-training package's ``encoder.*``); returns the count.

        ``features_only`` keeps timm's names for ResNets; flattened ``nn.Sequential`` stems are renamed ``a.0`` ->
        ``a_0`` (see :mod:`backend.models.segmentation`), so both spellings are tried. Missing tensors are an error.
        """
        from backend.models.state_dicts import load_matching

        own = self.encoder.state_dict()

        def target(key: str) -> str | None:
            return next((c for c in (key, key.replace(".", "_", 1)) if c in own), None)

        report = load_matching(self.encoder, timm_state, target=target, needs=f"the {self.spec.encoder}")
        if report.missing:
            raise EoSslError("weights_mismatch", f"The encoder weights lack {len(report.missing)} tensors of a "
                             f"{self.spec.encoder} (e.g. {', '.join(report.missing[:3])}).",
                             "Use a package written by eo-ssl pretrain with a timm CNN encoder.")
        return report.loaded

    def levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's feature maps at ``levels``, each at its own resolution."""
        x = (x - self.in_mean) / self.in_std
        if self.spec.channel_mode == "per-band":
            b, c = x.shape[:2]
            return [f.reshape(b, c, *f.shape[1:]).mean(1) for f in self.encoder(x.reshape(b * c, 1, *x.shape[-2:]))]
        return self.encoder(x)

    def pyramid(self, x: torch.Tensor) -> torch.Tensor:
        """(B, pyramid_dim, H, W): the levels upsampled and concatenated (before any projection)."""
        h, w = x.shape[-2:]
        return torch.cat([F.interpolate(f, size=(h, w), mode="bilinear", align_corners=False)
                          for f in self.levels(x)], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.spec.dim:
            return self.pyramid(x)
        # projected level by level at the level's own resolution, then upsampled: the same numbers as projecting the
        # upsampled pyramid (bilinear weights sum to 1, both maps are linear), with dim instead of pyramid_dim
        # channels upsampled (3x less time for the embedding of the pixel classifier on the CPU)
        h, w = x.shape[-2:]
        out = -(self.pca_components @ self.pca_mean).view(1, -1, 1, 1)
        start = 0
        for f in self.levels(x):
            part = self.pca_components[:, start:start + f.shape[1]]
            start += f.shape[1]
            out = out + F.interpolate(torch.einsum("bchw,kc->bkhw", f, part), size=(h, w), mode="bilinear",
                                      align_corners=False)
        return out


class PixelFeatures(nn.Module):
    """(B, D, H, W) standardised input with NaN at invalid observations -> (B, F, H, W) features (see the module
    docstring). ``names`` lists the features in order (for reports and feature importance)."""

    def __init__(self, inp: PixelInput, stats: bool | None = None, spectra: bool = True,
                 embedding: EmbeddingSpec | SeriesEmbeddingSpec | None = None) -> None:
        super().__init__()
        self.inp = inp
        self.use_spectra = spectra
        self.use_stats = any(len(b.dates) > 1 for b in inp.blocks) if stats is None else stats
        self.embedding: Embedding | SeriesEmbedding | None = None
        if isinstance(embedding, SeriesEmbeddingSpec):
            self.embedding = SeriesEmbedding(embedding)
            self._series_picks = self._picks(embedding.channels)
        elif embedding is not None:
            self.embedding = Embedding(embedding)
        if isinstance(self.embedding, Embedding):
            assert isinstance(embedding, EmbeddingSpec)
            picks = self._emb_picks = self._picks(embedding.channels)
            # the store's standardisation undone per encoder channel: raw = z * std + mean
            self.register_buffer("emb_raw_mean", torch.tensor(
                [inp.blocks[i].mean[c] for i, c in picks], dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("emb_raw_std", torch.tensor(
                [inp.blocks[i].std[c] for i, c in picks], dtype=torch.float32).view(1, -1, 1, 1))
        self.names = self._names()
        if not self.names:
            raise EoSslError("bad_argument", "The pixel classifier has no feature to use.",
                             "Keep the spectra, or give an encoder package with --init.")

    def _picks(self, channels: list[tuple[str, str]]) -> list[tuple[int, int]]:
        picks = []
        for s, band in channels:
            block = self.inp.block(s)
            if block is None or band not in block.bands:
                raise EoSslError("missing_bands", f"The encoder reads {s.upper()} {band}, which the data lack.",
                                 "Prepare the store with the bands the encoder was pre-trained on.")
            picks.append((self.inp.blocks.index(block), block.bands.index(band)))
        return picks

    @property
    def pointwise(self) -> bool:
        """A pixel's features depend on that pixel alone (no image encoder's spatial context)."""
        return not isinstance(self.embedding, Embedding)

    def series(self, x: torch.Tensor) -> torch.Tensor:
        """(B*H*W, P, C_enc) raw values (NaN where a period has no observation) of the series encoder's channels."""
        parts = self.split(x)
        raw = [parts[i][:, :, c] * self.inp.blocks[i].std[c] + self.inp.blocks[i].mean[c]
               for i, c in self._series_picks]  # each (B, P, H, W)
        v = torch.stack(raw, 2)  # (B, P, C, H, W)
        return v.permute(0, 3, 4, 1, 2).reshape(-1, v.shape[1], v.shape[2])

    def _names(self) -> list[str]:
        names: list[str] = []
        for block in self.inp.blocks:
            ndvi = _ndvi_bands(block) is not None
            if self.use_spectra:
                for d in block.dates:
                    names += [f"{block.sensor}:{b}@{d}" for b in block.bands]
                    if ndvi:
                        names.append(f"{block.sensor}:NDVI@{d}")
                if self.inp.calendar is not None and block.sensor != FEATURES:
                    names += [f"{block.sensor}:observed@{d}" for d in block.dates]
            if self.use_stats and len(block.dates) > 1:
                for st in STATS:
                    names += [f"{block.sensor}:{b}:{st}" for b in block.bands]
                    if ndvi:
                        names.append(f"{block.sensor}:NDVI:{st}")
        if self.embedding is not None:
            names += [f"embedding:{i}" for i in range(self.embedding.spec.out_dim)]
        return names

    @property
    def dim(self) -> int:
        return len(self.names)

    def split(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each sensor's (B, T, C, H, W) standardised values (NaN at invalid observations)."""
        out = []
        for block, o in zip(self.inp.blocks, self.inp.offsets()):
            part = x[:, o:o + block.size]
            out.append(part.reshape(x.shape[0], len(block.dates), len(block.bands), *x.shape[2:]))
        return out

    def composite(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_enc, H, W) raw-valued per-band median over valid dates of the encoder's channels (0 if none)."""
        parts = self.split(x)
        chans = [torch.nanmedian(parts[i][:, :, c], dim=1).values for i, c in self._emb_picks]
        z = torch.nan_to_num(torch.stack(chans, 1), nan=0.0)
        return z * self.emb_raw_std + self.emb_raw_mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats: list[torch.Tensor] = []
        for block, v in zip(self.inp.blocks, self.split(x)):
            nd = _ndvi_bands(block)
            ndvi = None
            if nd is not None:  # NDVI from the raw reflectances (a ratio of standardised values means nothing)
                red = v[:, :, nd[0]] * block.std[nd[0]] + block.mean[nd[0]]
                nir = v[:, :, nd[1]] * block.std[nd[1]] + block.mean[nd[1]]
                ndvi = (nir - red) / (nir + red).abs().clamp_min(1e-6)
                ndvi = ndvi.clamp(-1, 1).unsqueeze(2)  # (B, T, 1, H, W), NaN where the date is invalid
            if self.use_spectra:
                per_date = v if ndvi is None else torch.cat([v, ndvi], 2)
                if self.inp.calendar is not None and block.sensor != FEATURES:  # periods without an observation:
                    # filled along time
                    feats.append(fill_along_time(per_date, 1).flatten(1, 2))
                    feats.append((~torch.isnan(v)).any(2).to(v.dtype))
                else:
                    feats.append(torch.nan_to_num(per_date, nan=0.0).flatten(1, 2))
            if self.use_stats and len(block.dates) > 1:
                vals = v if ndvi is None else torch.cat([v, ndvi], 2)
                med = torch.nan_to_num(torch.nanmedian(vals, dim=1).values, nan=0.0)
                cnt = (~torch.isnan(vals)).sum(1).clamp_min(1)
                mean = torch.nan_to_num(vals, nan=0.0).sum(1) / cnt
                var = (torch.nan_to_num(vals - mean.unsqueeze(1), nan=0.0) ** 2).sum(1) / cnt
                feats += [med, var.sqrt(), nan_quantile(vals, 0.1, 1), nan_quantile(vals, 0.9, 1)]
        if isinstance(self.embedding, SeriesEmbedding):
            b, _, h, w = x.shape
            e = self.embedding(self.series(x))  # (B*H*W, D)
            feats.append(e.reshape(b, h, w, -1).permute(0, 3, 1, 2))
        elif self.embedding is not None:
            feats.append(self.embedding(self.composite(x)))
        return torch.cat(feats, 1)

    def describe(self) -> dict[str, Any]:
        """``model.json`` ``architecture.features``."""
        return {"input": self.inp.to_dict(), "spectra": self.use_spectra, "stats": list(STATS) if self.use_stats
                else [], "embedding": self.embedding.spec.to_dict() if self.embedding is not None else None,
                "dim": self.dim}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> PixelFeatures:
        e = d.get("embedding")
        emb: EmbeddingSpec | SeriesEmbeddingSpec | None = None
        if e:
            emb = SeriesEmbeddingSpec.from_dict(e) if e.get("kind") == "series" else EmbeddingSpec.from_dict(e)
        return cls(PixelInput.from_dict(d["input"]), stats=bool(d.get("stats")), spectra=bool(d.get("spectra", True)),
                   embedding=emb)
