"""Pixel time-series encoder: a pixel's series on a season calendar -> an embedding (``ts-byol``, ``ts-barlow``).

Input (:meth:`SeriesEncoder.embed`): ``values`` (N, P, C) **raw** values (Sentinel-2 reflectance x 10,000, Sentinel-1
dB), NaN where a period holds no valid observation (:func:`backend.data.calendar.composite_periods`); ``bands`` names
the C channels ``(sensor, band)`` (matched to the encoder's own channels by name, in any order); ``months`` (P,) or
(N, P) the month (0..11) each period starts in (:meth:`backend.data.calendar.Calendar.months`).

The network (``series-transformer``, about 0.16 M parameters at the defaults):

- its own per-band normalisation ``(x - mean) / std`` with the training stores' statistics (buffers saved with the
  weights, and in ``model.json`` ``normalization``);
- one token per period: all channels of the period projected to ``width`` by one linear layer (a band missing
  inside an observed sensor, e.g. dropped by a view, counts as its mean, 0), plus a learnt vector per sensor observed
  in that period, a learnt month embedding and a sinusoidal encoding of the period's position in the season, in
  months from January of the season's first year. The position is derived from ``months`` (a year is added where
  the months wrap), so a period's encoding does not depend on which other periods are present;
- a sensor whose bands are all NaN in a period (not observed, or a sensor the data lack) adds nothing to that
  period's token, and a period without any observed sensor takes no part: it is masked as a key of every attention
  and left out of the pooling. So a series with an empty period embeds as the same series without that period, and
  an S2+S1 encoder embeds S2 alone as an S2+S1 series whose S1 is unobserved;
- ``depth`` pre-norm transformer blocks (``heads`` heads, MLP ``mlp_ratio`` x ``width``, no dropout), the mean of
  the observed periods' tokens, LayerNorm, a linear layer to ``dim``. A pixel without any observation embeds as
  zeros.

Why a transformer rather than a 1-D CNN: masked attention skips missing periods exactly, where a convolution would
need them filled. Why one token per period rather than one per sensor and period: half the tokens (the cost on a
CPU), and a sensor missing from a period is still told apart by which sensor vectors its token holds.

A package of ``eo-ssl pretrain --method ts-byol|ts-barlow`` holds the encoder under ``encoder.`` and describes it in
``model.json`` (``architecture.family: "series"``, ``input.channels``, ``input.calendar``, ``normalization``);
:func:`load_series_package` rebuilds it strictly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.errors import EoSslError
from backend.models.state_dicts import load_exactly

#: ``architecture.encoder`` of the series transformer
NAME = "series-transformer"
FAMILY = "series"
#: the network's options and defaults (``architecture`` keys in ``model.json``; ``--set`` keys of the methods)
ARCH_DEFAULTS: dict[str, Any] = {"width": 64, "depth": 3, "heads": 4, "mlp_ratio": 4.0, "dim": 64}


def season_positions(months: torch.Tensor) -> torch.Tensor:
    """(N, P) months 0..11 -> months from January of the season's first year: a year is added at every wrap (a
    month smaller than the one before). Periods of the same month (N-day steps) share a position."""
    wraps = torch.zeros_like(months)
    if months.shape[1] > 1:
        wraps[:, 1:] = torch.cumsum((months[:, 1:] < months[:, :-1]).long(), dim=1)
    return months + 12 * wraps


def sinusoid(positions: torch.Tensor, width: int) -> torch.Tensor:
    """Transformer sinusoidal encoding (..., width) of real-valued positions (...)."""
    half = torch.arange(0, width, 2, device=positions.device, dtype=torch.float32)
    freq = torch.exp(-math.log(10000.0) * half / width)
    angle = positions.float()[..., None] * freq
    out = torch.zeros(*positions.shape, width, device=positions.device)
    out[..., 0::2] = torch.sin(angle)
    out[..., 1::2] = torch.cos(angle[..., : width // 2])
    return out


class Block(nn.Module):
    """Pre-norm transformer block with a key mask (written out so that masked tokens are plainly excluded and the
    state-dict names stay ours: ``norm1``, ``qkv``, ``proj``, ``norm2``, ``mlp``)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        hidden = int(round(width * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """``x`` (N, T, width); ``keys`` (N, T) bool, True where a token may be attended to."""
        n, t, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keys[:, None, None, :])
        x = x + self.proj(a.transpose(1, 2).reshape(n, t, w))
        return x + self.mlp(self.norm2(x))


class SeriesEncoder(nn.Module):
    """See the module docstring. ``channels``: the (sensor, band) pairs in the order the encoder reads them;
    ``mean``/``std``: their normalisation (raw units); ``calendar``: the season calendar it was trained on
    (``{"start", "step", "periods", "year"}``, informative: the encoder reads any months)."""

    def __init__(self, channels: Sequence[Sequence[str]], mean: Sequence[float], std: Sequence[float], *,
                 width: int = 64, depth: int = 3, heads: int = 4, mlp_ratio: float = 4.0, dim: int = 64,
                 calendar: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.channels: list[tuple[str, str]] = [(str(s), str(b)) for s, b in channels]
        if not self.channels or len(mean) != len(self.channels) or len(std) != len(self.channels):
            raise ValueError("channels, mean and std must be non-empty and of the same length")
        if width % heads or width % 2:
            raise EoSslError("bad_argument", f"The series encoder's width {width} must be even and a multiple of "
                             f"its {heads} heads.", "Use e.g. --set width=128 --set heads=4.")
        self.width, self.depth, self.heads, self.mlp_ratio, self.dim = (int(width), int(depth), int(heads),
                                                                       float(mlp_ratio), int(dim))
        self.calendar = dict(calendar) if calendar else None
        #: pooled output size (timm's name, which :class:`backend.ssl.base.SSLMethod` reads)
        self.num_features = self.dim
        self.sensors: list[str] = list(dict.fromkeys(s for s, _ in self.channels))
        self.group_index = {s: [i for i, (t, _) in enumerate(self.channels) if t == s] for s in self.sensors}
        self.register_buffer("mean", torch.tensor([float(v) for v in mean], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([max(float(v), 1e-6) for v in std], dtype=torch.float32))
        self.proj = nn.Linear(len(self.channels), self.width, bias=False)
        #: added to a period's token for each sensor observed in it (the token's bias, per sensor)
        self.sensor_embed = nn.Embedding(len(self.sensors), self.width)
        self.month_embed = nn.Embedding(12, self.width)
        self.blocks = nn.ModuleList([Block(self.width, self.heads, self.mlp_ratio) for _ in range(self.depth)])
        self.norm = nn.LayerNorm(self.width)
        self.head = nn.Linear(self.width, self.dim)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)

    # -- description ---------------------------------------------------------------------------------------------
    def architecture(self) -> dict[str, Any]:
        """``model.json`` ``architecture``."""
        return {"family": FAMILY, "encoder": NAME, "in_chans": len(self.channels), "width": self.width,
                "depth": self.depth, "heads": self.heads, "mlp_ratio": self.mlp_ratio, "dim": self.dim,
                "num_features": self.dim, "tokens": "period", "sensors": self.sensors, "decoder": None,
                "num_classes": None}

    def normalization(self) -> dict[str, dict[str, dict[str, float]]]:
        """``model.json`` ``normalization``: per sensor and band, the mean/std the encoder applies to raw values."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for (s, b), m, sd in zip(self.channels, self.mean.tolist(), self.std.tolist()):
            out.setdefault(s, {})[b] = {"mean": float(m), "std": float(sd)}
        return out

    # -- the network ---------------------------------------------------------------------------------------------
    def forward(self, values: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
                months: torch.Tensor | None = None) -> torch.Tensor:
        """(N, dim) of ``values`` (N, P, C) raw in the encoder's channel order, NaN where missing, and ``months``
        (P,) or (N, P). ``values`` may be the pair ``(values, months)`` (a view of the pre-training methods)."""
        if months is None:
            values, months = values  # type: ignore[misc]
        assert isinstance(values, torch.Tensor)
        n, p, _ = values.shape
        x = (values.float() - self.mean) / self.std
        m = months.to(values.device).long()
        m = (m if m.dim() == 2 else m[None]).expand(n, p)
        h = self.month_embed(m) + sinusoid(season_positions(m), self.width)  # (N, P, W)
        seen_by = torch.stack([~torch.isnan(x[..., idx]).all(dim=-1) for idx in self.group_index.values()], dim=-1)
        h = h + self.proj(torch.nan_to_num(x, nan=0.0)) + seen_by.to(h.dtype) @ self.sensor_embed.weight
        mask = seen_by.any(dim=-1)  # (N, P): periods with an observation
        seen = mask.any(dim=1)
        keys = mask | ~seen[:, None]  # a pixel with nothing observed attends to its (finite) tokens; zeroed below
        for block in self.blocks:
            h = block(h, keys)
        w = mask.to(h.dtype)[..., None]
        pooled = (h * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
        return self.head(self.norm(pooled)) * seen[:, None].to(h.dtype)

    # -- the public embedding ------------------------------------------------------------------------------------
    def match(self, bands: Sequence[Sequence[str]]) -> list[int]:
        """For each of the encoder's channels, its index in ``bands`` (-1: the data lack the whole sensor, which is
        then read as unobserved). A band missing from a sensor the data have is ``missing_bands``; bands the encoder
        does not read are ignored."""
        given = {(str(s), str(b)): i for i, (s, b) in enumerate(bands)}
        have_sensor = {s for s, _ in given}
        out, missing = [], []
        for ch in self.channels:
            if ch in given:
                out.append(given[ch])
            elif ch[0] in have_sensor:
                missing.append(f"{ch[0]} {ch[1]}")
            else:
                out.append(-1)
        if missing:
            raise EoSslError("missing_bands", f"The series encoder reads {', '.join(missing)}, which the data lack.",
                             "Give it data with every band of its sensors (model.json input.channels).")
        return out

    @torch.no_grad()
    def embed(self, values: torch.Tensor | np.ndarray, bands: Sequence[Sequence[str]],
              months: torch.Tensor | np.ndarray | Sequence[int], batch_size: int = 16384) -> torch.Tensor:
        """(N, dim) float32 embeddings of ``values`` (N, P, C) raw values named by ``bands`` (C pairs (sensor,
        band)), NaN where unobserved, with ``months`` (P,) or (N, P) 0..11. Deterministic (eval mode, no dropout;
        the module's mode is restored), in batches of ``batch_size`` pixels, on the encoder's device (the result
        too)."""
        device = self.mean.device
        v = torch.as_tensor(values)
        if v.dim() != 3 or v.shape[2] != len(bands):
            raise ValueError(f"values must be (N, P, C) with C = len(bands) = {len(bands)}; got {tuple(v.shape)}")
        idx = self.match(bands)
        m = torch.as_tensor(np.asarray(months) if not isinstance(months, torch.Tensor) else months).long()
        if m.shape[-1] != v.shape[1]:
            raise ValueError(f"months must have one entry per period ({v.shape[1]}); got {tuple(m.shape)}")
        take = torch.tensor([max(i, 0) for i in idx])
        absent = torch.tensor([i < 0 for i in idx])
        was_training = self.training
        self.eval()
        try:
            out = []
            for a in range(0, len(v), batch_size):
                chunk = v[a:a + batch_size].to(device, torch.float32)[..., take.to(device)]
                if absent.any():
                    chunk[..., absent.to(device)] = float("nan")
                mm = m[a:a + batch_size] if m.dim() == 2 else m
                out.append(self(chunk, mm.to(device)).float())
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, self.dim, device=device)


def series_from_blocks(x: torch.Tensor | np.ndarray, blocks: Sequence[Any]
                       ) -> tuple[torch.Tensor, list[tuple[str, str]]]:
    """The pixel classifiers' standardised input (N, D) (:func:`backend.pixel.data.read_inputs`: sensor-major, then
    period-major, then band; NaN where unobserved) -> raw ``values`` (N, P, C) for :meth:`SeriesEncoder.embed` and
    their ``bands``. ``blocks``: the :class:`backend.pixel.features.SensorBlock` s of the input (``sensor``,
    ``bands``, ``dates``, ``mean``, ``std``), all on the same calendar (the same number of periods)."""
    x = torch.as_tensor(x, dtype=torch.float32)
    periods = {len(b.dates) for b in blocks}
    if len(periods) != 1:
        raise EoSslError("bad_argument", "A series encoder reads sensors on one calendar; these inputs have "
                         f"{sorted(periods)} periods per sensor.", "Use a season calendar (--period month or Nd).")
    p = periods.pop()
    parts, bands, o = [], [], 0
    for b in blocks:
        c = len(b.bands)
        z = x[:, o:o + p * c].reshape(len(x), p, c)
        parts.append(z * torch.tensor(b.std, dtype=torch.float32) + torch.tensor(b.mean, dtype=torch.float32))
        bands.extend((b.sensor, band) for band in b.bands)
        o += p * c
    if o != x.shape[1]:
        raise ValueError(f"the blocks describe {o} values per pixel; x has {x.shape[1]}")
    return torch.cat(parts, dim=2), bands


def encoder_from_meta(meta: dict[str, Any]) -> SeriesEncoder:
    """A :class:`SeriesEncoder` as ``model.json`` describes it (weights not loaded)."""
    arch = meta.get("architecture") or {}
    inp = meta.get("input") or {}
    channels = [(str(s), str(b)) for s, b in inp.get("channels") or []]
    norm = meta.get("normalization") or {}
    try:
        mean = [float(norm[s][b]["mean"]) for s, b in channels]
        std = [float(norm[s][b]["std"]) for s, b in channels]
        kwargs = {k: type(v)(arch[k]) for k, v in ARCH_DEFAULTS.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise EoSslError("corrupt_model", f"model.json does not describe a series encoder completely ({exc!r}).",
                         "Use a package written by eo-ssl pretrain --method ts-byol or ts-barlow.") from exc
    if int(arch.get("in_chans", len(channels))) != len(channels) or not channels:
        raise EoSslError("corrupt_model", "model.json: input.channels and architecture.in_chans disagree.",
                         "Use another copy of the package.")
    return SeriesEncoder(channels, mean, std, calendar=inp.get("calendar"), **kwargs)


def load_series_package(path: str | Path, device: str | torch.device = "cpu") -> SeriesEncoder:
    """The series encoder of an eo-ssl package (``architecture.family: "series"``), weights loaded strictly (every
    tensor under ``encoder.`` and nothing else, the normalisation equal to ``model.json``'s), in eval mode."""
    from backend.models.package import load_package, weights_under

    meta, weights = load_package(path)
    arch = meta.get("architecture") or {}
    if arch.get("family") != FAMILY:
        raise EoSslError("unsupported_model", f"{path} holds a {arch.get('family') or 'timm'} model "
                         f"({meta.get('method')}), not a pixel time-series encoder.",
                         "Use a package of eo-ssl pretrain --method ts-byol or ts-barlow.")
    encoder = encoder_from_meta(meta)
    described = encoder.mean.clone(), encoder.std.clone()
    state = weights_under(weights, "encoder.")
    load_exactly(encoder, state, "corrupt_model", f"{path}: the weights do not fit the series encoder model.json "
                 "describes", "Use another copy of the package.", limit=400)
    if not (torch.allclose(encoder.mean, described[0], rtol=1e-5)
            and torch.allclose(encoder.std, described[1], rtol=1e-5)):
        raise EoSslError("corrupt_model", f"{path}: the normalisation in the weights differs from model.json's.",
                         "Use another copy of the package.")
    return encoder.to(device).eval()
