"""Presto (Tseng et al. 2023, "Lightweight, Pre-trained Transformers for Remote Sensing Timeseries", arXiv
2304.14065): eo-ssl's own implementation of the published architecture, loadable strictly from its weights.
Long because: one published architecture (channels, tokens, encodings, blocks, strict loading), checked tensor by
tensor against the reference, stays one module.

Presto encodes *one pixel's* monthly time series (up to 24 months). Its 17 input channels (:data:`CHANNELS`) form
channel groups (:data:`GROUPS`); every group gives one token per month (a linear embedding of the group's
normalised values), SRTM one token for the whole series, Dynamic World one token per month (a class embedding), and
a lat/lon token (a linear embedding of the pixel's position on the unit sphere) comes first. A token's encoding is
the concatenation [month encoding (32) | channel-group embedding (32) | position encoding (64)] added to it: the
month encoding is a fixed sin/cos of the calendar month, the position encoding the usual sinusoid of the time step
index (base 1000), the group embedding learnt (SRTM gets zeros for month and position). Two pre-norm transformer
blocks (8 heads, MLP x4) follow, then the encoder's output for downstream classifiers, as the reference computes it
with ``eval_task=True``: the **mean of the transformer's outputs over the unmasked tokens** (the lat/lon token
included), **then** the final LayerNorm -> 128 values.

Masking: a group's token at a time step is masked when *any* of its channels is masked there (the reference takes
the max of the channel mask over the group); a Dynamic World token when its class is 9 ("missing"). Masked tokens
take no part in attention (they are removed from the keys) nor in the mean. Presto was pre-trained with random
group/time masking, so a missing group is an input it knows.

Normalisation (the reference's ``S1_S2_ERA5_SRTM.normalize``): ``(x + shift) / div`` per channel: Sentinel-1 VV, VH
in dB: ``(dB + 25) / 25`` (no log: the values are already dB, as Earth Engine's S1_GRD); Sentinel-2 reflectance x
10000: ``/ 10000``; NDVI = ``(B08 - B04) / (B08 + B04)`` of the normalised bands (0 where the sum is not positive).
Presto was pre-trained on Earth Engine's Sentinel-2 **L1C** (top of atmosphere, ``COPERNICUS/S2``) monthly
best-pixel mosaics; eo-ssl feeds what its stores hold (L2A surface reflectance for most of them): same scale,
slightly different values (no atmosphere).

What eo-ssl cannot supply, and how it is masked (:meth:`PrestoEncoder.embed`):

- ERA5 (``temperature_2m``, ``total_precipitation``): zeros, masked at every time step;
- SRTM (``elevation``, ``slope``): zeros, its single token masked;
- Dynamic World: class 9 ("missing") at every time step, which masks its tokens;
- Sentinel-2 B01, B09 and B10 are not Presto inputs at all (they are ignored if given).

A band absent from ``values`` masks its group at every time step (and NDVI without B04 or B08); a NaN masks its
group at that time step only. The decoder of the published file (the masked-autoencoder's reconstruction head) is
held by :class:`Presto` only so that the file loads strictly, every tensor used; eo-ssl packages keep the encoder.

Key names follow the published state dict (``encoder.blocks.0.attn.qkv.weight`` ...) so it loads with
``load_state_dict(strict=True)``. Reference: nasaharvest/presto @ 13173d0 (MIT licence), ``presto/presto.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from backend.data.bands import S1_BANDS
from backend.errors import EoSslError

#: The channel groups in the reference's order (``BANDS_GROUPS_IDX``); a group's index is its channel-embedding row.
GROUPS: dict[str, tuple[str, ...]] = {
    "S1": S1_BANDS,
    "S2_RGB": ("B02", "B03", "B04"),
    "S2_Red_Edge": ("B05", "B06", "B07"),
    "S2_NIR_10m": ("B08",),
    "S2_NIR_20m": ("B8A",),
    "S2_SWIR": ("B11", "B12"),
    "ERA5": ("temperature_2m", "total_precipitation"),
    "SRTM": ("elevation", "slope"),
    "NDVI": ("NDVI",),
}
#: Presto's 17 normalised input channels, in its order (the groups are contiguous in it).
CHANNELS: tuple[str, ...] = tuple(b for bands in GROUPS.values() for b in bands)
#: ``(x + shift) / div`` per channel (the reference's ``ADD_BY``/``DIVIDE_BY``; ERA5 temperature in K, precipitation
#: in m, SRTM elevation in m and slope in degrees)
SHIFT: dict[str, float] = {"VV": 25.0, "VH": 25.0, "temperature_2m": -272.15}
DIV: dict[str, float] = {"VV": 25.0, "VH": 25.0, "temperature_2m": 35.0, "total_precipitation": 0.03,
                         "elevation": 2000.0, "slope": 50.0, "NDVI": 1.0,
                         **{b: 10000.0 for b in CHANNELS if b.startswith("B")}}
#: The bands eo-ssl supplies (``embed``'s ``values`` keys), by sensor.
S1_INPUT: tuple[str, ...] = S1_BANDS
S2_INPUT: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
INPUT_BANDS: tuple[str, ...] = S1_INPUT + S2_INPUT
#: Sentinel-2 bands Presto does not read (the reference drops B1, B10 and B9); ``embed`` ignores them.
IGNORED_BANDS: tuple[str, ...] = ("B01", "B09", "B10")
#: What eo-ssl never supplies: always masked.
NOT_SUPPLIED: dict[str, str] = {
    "ERA5": "temperature_2m, total_precipitation: zeros, masked at every time step",
    "SRTM": "elevation, slope: zeros, its one token masked",
    "dynamic_world": "class 9 ('missing') at every time step, which masks its tokens",
}
DW_CLASSES = 9
DW_MISSING = 9  # the reference's DynamicWorld2020_2021.class_amount: "no Dynamic World class"
#: The published pre-trained weights (nasaharvest/presto @ 13173d0, data/default_model.pt): SHA-256 and source.
PUBLISHED_SHA256 = "559c9d76f525bdf2dd3774da8b1e7f1510769b73baacac12e9e4d8d5c67fbe65"
PUBLISHED_SOURCE = ("https://github.com/nasaharvest/presto/blob/main/data/default_model.pt (Tseng et al. 2023, "
                    "arXiv 2304.14065; MIT licence)")
#: The architecture of the published weights (the reference's ``config/default.json``).
DEFAULT_ARCHITECTURE: dict[str, Any] = {"embedding_size": 128, "depth": 2, "num_heads": 8, "mlp_ratio": 4,
                                        "max_sequence_length": 24, "channel_embed_ratio": 0.25,
                                        "month_embed_ratio": 0.25}
_SLICES: dict[str, slice] = {}
_start = 0
for _name, _bands in GROUPS.items():
    _SLICES[_name] = slice(_start, _start + len(_bands))
    _start += len(_bands)
del _start, _name, _bands


def sinusoid_table(positions: int, dim: int, base: float = 1000.0) -> torch.Tensor:
    """(positions, dim): ``sin(p / base^(2i/dim))`` in column 2i, ``cos`` of the same angle in column 2i + 1."""
    pos = torch.arange(positions, dtype=torch.float64)[:, None]
    i = torch.arange(dim)
    angle = pos / base ** (2 * (i // 2) / dim).to(torch.float64)
    return torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle)).to(torch.float32)


def month_table(dim: int) -> torch.Tensor:
    """(12, dim): the calendar month m (0 = January) as ``sin(2 pi m / 12)`` in the first half of the columns and
    ``cos`` in the second (every column of a half is the same)."""
    angle = torch.arange(12, dtype=torch.float64) * (2 * math.pi / 12)
    half = dim // 2
    return torch.cat([torch.sin(angle)[:, None].expand(12, half), torch.cos(angle)[:, None].expand(12, half)],
                     dim=1).to(torch.float32)


def cartesian(latlon: torch.Tensor) -> torch.Tensor:
    """(N, 2) latitude, longitude in degrees -> (N, 3) the point on the unit sphere."""
    lat, lon = torch.deg2rad(latlon[:, 0]), torch.deg2rad(latlon[:, 1])
    return torch.stack([torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat)], dim=-1)


def normalise(raw: torch.Tensor) -> torch.Tensor:
    """(..., 17) raw values in :data:`CHANNELS` order -> Presto's units; the NDVI channel is computed from B04/B08
    (its raw value is not read)."""
    shift = raw.new_tensor([SHIFT.get(b, 0.0) for b in CHANNELS])
    div = raw.new_tensor([DIV[b] for b in CHANNELS])
    x = (raw + shift) / div
    red, nir = x[..., CHANNELS.index("B04")], x[..., CHANNELS.index("B08")]
    total = nir + red
    ndvi = torch.where(total > 0, (nir - red) / torch.where(total > 0, total, torch.ones_like(total)),
                       torch.zeros_like(total))
    return torch.cat([x[..., :-1], ndvi[..., None]], dim=-1)


# -- the transformer ---------------------------------------------------------------------------------------------------
class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None = None) -> torch.Tensor:
        """``attend``: (N, L) True where a token may be attended to (None: every token)."""
        n, length, dim = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        mask = None if attend is None else attend[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    """Pre-norm transformer block (timm's ViT block without layer scale or dropout)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), attend)
        return x + self.mlp(self.norm2(x))


class PrestoEncoder(nn.Module):
    """Presto's encoder: a pixel's time series -> 128 features (see the module docstring)."""

    #: pixels per forward pass in :meth:`embed` (bounds the memory: ~0.5 MB a pixel on the CPU)
    chunk_size: ClassVar[int] = 1024

    def __init__(self, embedding_size: int = 128, depth: int = 2, num_heads: int = 8, mlp_ratio: float = 4,
                 max_sequence_length: int = 24, channel_embed_ratio: float = 0.25,
                 month_embed_ratio: float = 0.25) -> None:
        super().__init__()
        self.embedding_size = embedding_size
        self.max_sequence_length = max_sequence_length
        self.eo_patch_embed = nn.ModuleDict({g: nn.Linear(len(b), embedding_size) for g, b in GROUPS.items()})
        self.dw_embed = nn.Embedding(DW_CLASSES + 1, embedding_size)
        self.latlon_embed = nn.Linear(3, embedding_size)
        self.blocks = nn.ModuleList([_Block(embedding_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embedding_size)
        channel_dim = int(embedding_size * channel_embed_ratio)
        month_dim = int(embedding_size * month_embed_ratio)
        pos_dim = int(embedding_size * (1 - (channel_embed_ratio + month_embed_ratio)))
        # fixed tables (the file holds them too; they are loaded from it like any tensor)
        self.pos_embed = nn.Parameter(sinusoid_table(max_sequence_length, pos_dim)[None], requires_grad=False)
        self.month_embed = nn.Embedding.from_pretrained(month_table(month_dim), freeze=True)
        self.channel_embed = nn.Embedding(len(GROUPS) + 1, channel_dim)  # the groups, then Dynamic World

    @property
    def device(self) -> torch.device:
        return self.norm.weight.device

    def tokens(self, x: torch.Tensor, mask: torch.Tensor, dynamic_world: torch.Tensor, latlon: torch.Tensor,
               months: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, L, D) tokens with their encodings and (N, L) True where masked: lat/lon first, then each group's
        tokens over time (SRTM: one), then Dynamic World's. A group masked in every pixel is left out (it would
        change nothing: see :meth:`forward`)."""
        n, t, _ = x.shape
        month = self.month_embed(months)
        pos = self.pos_embed[:, :t].expand(n, -1, -1)
        channel = self.channel_embed.weight
        tokens = [self.latlon_embed(cartesian(latlon))[:, None]]
        masked = [torch.zeros(n, 1, dtype=torch.bool, device=x.device)]
        for i, (group, cols) in enumerate(_SLICES.items()):
            steps = slice(0, 1) if group == "SRTM" else slice(None)  # SRTM is static: one token, from step 0
            group_masked = mask[:, steps, cols].any(-1)
            if bool(group_masked.all()):
                continue
            if group == "SRTM":  # ... without month or position
                code = torch.cat([torch.zeros_like(month[:, :1]), channel[i].expand(n, 1, -1),
                                  torch.zeros_like(pos[:, :1])], dim=-1)
            else:
                code = torch.cat([month, channel[i].expand(n, t, -1), pos], dim=-1)
            tokens.append(self.eo_patch_embed[group](x[:, steps, cols]) + code)
            masked.append(group_masked)
        dw_masked = dynamic_world == DW_MISSING
        if not bool(dw_masked.all()):
            code = torch.cat([month, channel[len(GROUPS)].expand(n, t, -1), pos], dim=-1)
            tokens.append(self.dw_embed(dynamic_world) + code)
            masked.append(dw_masked)
        return torch.cat(tokens, dim=1), torch.cat(masked, dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, dynamic_world: torch.Tensor, latlon: torch.Tensor,
                months: torch.Tensor) -> torch.Tensor:
        """The pooled features (N, D) of normalised inputs ``x`` (N, T, 17) in :data:`CHANNELS` order, ``mask``
        (N, T, 17) True where a channel is missing, ``dynamic_world`` (N, T) classes (9: missing), ``latlon``
        (N, 2) degrees, ``months`` (N, T) calendar months 0..11. Masked inputs must be finite (0 is fine)."""
        h, masked = self.tokens(x, mask.bool(), dynamic_world, latlon, months)
        # tokens masked in every pixel of the batch change nothing: drop them (ERA5, SRTM and Dynamic World
        # in eo-ssl's inputs), then the rest are masked per pixel by leaving them out of attention and the mean
        keep = ~masked.all(0)
        h, masked = h[:, keep], masked[:, keep]
        attend = ~masked if bool(masked.any()) else None
        for block in self.blocks:
            h = block(h, attend)
        weight = (~masked).to(h.dtype)[..., None]
        return self.norm((h * weight).sum(1) / weight.sum(1))

    def embed(self, values: dict[str, torch.Tensor], months: torch.Tensor, latlon: torch.Tensor) -> torch.Tensor:
        """Presto features of N pixels' time series: (N, 128) float32, on ``latlon``'s device.

        ``values``: canonical band name (``B02``..``B12``, ``B8A``, ``VV``, ``VH``) -> (N, T) raw values:
        Sentinel-2 L2A reflectance x 10000, Sentinel-1 in dB; NaN (or inf) where the time step has no observation
        (that band's group is masked at that step); a band absent from the dict masks its group at every step.
        ``B01``, ``B09``, ``B10`` are ignored (not Presto inputs). ``months``: (T,) calendar month of each step,
        0 = January (Presto's month encoding). ``latlon``: (N, 2) latitude, longitude in degrees (WGS84), e.g.
        :func:`pixel_latlon`. ERA5, SRTM and Dynamic World are always masked (eo-ssl has none).

        Deterministic, without gradients, float32 even under autocast; runs on the encoder's device in chunks of
        :attr:`chunk_size` pixels."""
        n, t = _check_inputs(values, months, latlon, self.max_sequence_length)
        out = torch.empty(n, self.embedding_size, dtype=torch.float32, device=latlon.device)
        device = self.device
        months = months.to(device=device, dtype=torch.long)
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            for start in range(0, n, self.chunk_size):
                rows = slice(start, min(n, start + self.chunk_size))
                m = rows.stop - rows.start
                x, mask = presto_inputs({b: v[rows] for b, v in values.items()}, m, t, device)
                dw = torch.full((m, t), DW_MISSING, dtype=torch.long, device=device)
                ll = latlon[rows].to(device=device, dtype=torch.float32)
                out[rows] = self.forward(x, mask, dw, ll, months[None].expand(m, t)).to(out.device)
        return out


def _check_inputs(values: Mapping[str, torch.Tensor], months: torch.Tensor, latlon: torch.Tensor,
                  max_steps: int) -> tuple[int, int]:
    if latlon.dim() != 2 or latlon.shape[1] != 2:
        raise ValueError(f"latlon must be (N, 2) degrees, not {tuple(latlon.shape)}")
    if months.dim() != 1:
        raise ValueError(f"months must be (T,) calendar months, not {tuple(months.shape)}")
    n, t = int(latlon.shape[0]), int(months.shape[0])
    if not 1 <= t <= max_steps:
        raise ValueError(f"Presto reads 1 to {max_steps} time steps; months has {t}")
    if int(months.min()) < 0 or int(months.max()) > 11:
        raise ValueError("months must be calendar months 0 (January) .. 11")
    unknown = sorted(set(values) - set(INPUT_BANDS) - set(IGNORED_BANDS))
    if unknown:
        raise ValueError(f"not Presto input bands: {', '.join(unknown)} (canonical names: {', '.join(INPUT_BANDS)})")
    for band, v in values.items():
        if tuple(v.shape) != (n, t):
            raise ValueError(f"values[{band!r}] must be (N, T) = ({n}, {t}), not {tuple(v.shape)}")
    return n, t


def presto_inputs(values: Mapping[str, torch.Tensor], n: int, t: int, device: torch.device | str = "cpu"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised inputs (N, T, 17) and their mask (N, T, 17, True = missing) of N pixels' raw band values (see
    :meth:`PrestoEncoder.embed`): absent bands and non-finite values are missing (0 in the inputs), ERA5 and SRTM
    always, NDVI wherever B04 or B08 is."""
    raw = torch.zeros(n, t, len(CHANNELS), dtype=torch.float32, device=device)
    missing = torch.ones(n, t, len(CHANNELS), dtype=torch.bool, device=device)
    for band, v in values.items():
        if band in IGNORED_BANDS:
            continue
        i = CHANNELS.index(band)
        v = v.to(device=device, dtype=torch.float32)
        ok = torch.isfinite(v)
        raw[..., i] = torch.where(ok, v, torch.zeros_like(v))
        missing[..., i] = ~ok
    ndvi = CHANNELS.index("NDVI")
    missing[..., ndvi] = missing[..., CHANNELS.index("B04")] | missing[..., CHANNELS.index("B08")]
    x = normalise(raw)
    return x.masked_fill(missing, 0.0), missing


def pixel_latlon(crs: Any, transform: Sequence[float], rows: Any, cols: Any) -> torch.Tensor:
    """(N, 2) float32 latitude, longitude (WGS84 degrees) of the centres of the grid pixels (``rows``, ``cols``).

    ``crs``: anything pyproj reads (WKT, ``EPSG:32631``, a CRS); ``transform``: the grid's affine transform as its
    six numbers (a, b, c, d, e, f), e.g. a chip store's ``manifest["grid"]["transform"]`` or an ``Affine``."""
    from pyproj import CRS, Transformer  # only here: reading stores needs no GIS library

    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
    r = np.asarray(rows, dtype=np.float64) + 0.5
    k = np.asarray(cols, dtype=np.float64) + 0.5
    x, y = c + a * k + b * r, f + d * k + e * r
    lon, lat = Transformer.from_crs(CRS.from_user_input(crs), "EPSG:4326", always_xy=True).transform(x, y)
    return torch.from_numpy(np.stack([np.asarray(lat), np.asarray(lon)], axis=-1).astype(np.float32))


class PrestoDecoder(nn.Module):
    """The published masked-autoencoder's decoder, held as tensors only (no forward): it makes the published file
    load strictly, every tensor used and checked; eo-ssl packages drop it."""

    def __init__(self, encoder_embed_dim: int = 128, decoder_embed_dim: int = 128, depth: int = 2,
                 num_heads: int = 8, mlp_ratio: float = 4, max_sequence_length: int = 24,
                 channel_dim: int = 32) -> None:
        super().__init__()
        self.decoder_embed = nn.Linear(encoder_embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(decoder_embed_dim))
        self.decoder_blocks = nn.ModuleList([_Block(decoder_embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim)
        self.eo_decoder_pred = nn.ModuleDict({g: nn.Linear(decoder_embed_dim, len(b)) for g, b in GROUPS.items()})
        self.dw_decoder_pred = nn.Linear(decoder_embed_dim, DW_CLASSES)
        self.channel_embeddings = nn.Embedding(len(GROUPS) + 1, channel_dim)  # tied to the encoder's in training
        half = (decoder_embed_dim - channel_dim) // 2
        self.pos_embed = nn.Parameter(sinusoid_table(max_sequence_length, half)[None], requires_grad=False)
        self.month_embed = nn.Embedding.from_pretrained(month_table(half), freeze=True)


class Presto(nn.Module):
    """Encoder + decoder, the layout of the published state dict (``encoder.*``, ``decoder.*``)."""

    def __init__(self, embedding_size: int = 128, depth: int = 2, num_heads: int = 8, mlp_ratio: float = 4,
                 max_sequence_length: int = 24, channel_embed_ratio: float = 0.25, month_embed_ratio: float = 0.25,
                 decoder_embedding_size: int = 128, decoder_depth: int = 2, decoder_num_heads: int = 8) -> None:
        super().__init__()
        self.encoder = PrestoEncoder(embedding_size, depth, num_heads, mlp_ratio, max_sequence_length,
                                     channel_embed_ratio, month_embed_ratio)
        self.decoder = PrestoDecoder(embedding_size, decoder_embedding_size, decoder_depth, decoder_num_heads,
                                     mlp_ratio, max_sequence_length, int(embedding_size * channel_embed_ratio))


# -- loading -----------------------------------------------------------------------------------------------------------
_SHOW = 8


def _compare(found: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor], what: str, hint: str) -> None:
    """Refuse (``weights_mismatch``) unless ``found`` has exactly ``own``'s names and shapes."""
    missing = [k for k in own if k not in found]
    extra = [k for k in found if k not in own]
    wrong = [f"{k} {tuple(found[k].shape)} (needs {tuple(v.shape)})" for k, v in own.items()
             if k in found and tuple(found[k].shape) != tuple(v.shape)]
    if missing or extra or wrong:
        parts = [f"{len(keys)} {label}: {', '.join(keys[:_SHOW])}{' ...' if len(keys) > _SHOW else ''}"
                 for label, keys in (("missing", missing), ("not in Presto", extra), ("of another shape", wrong))
                 if keys]
        raise EoSslError("weights_mismatch", f"{what} is not a Presto state dict: " + "; ".join(parts) + ".", hint)


def read_presto_file(path: str | Path) -> tuple[Presto, dict[str, Any]]:
    """The published Presto weights (``.pt`` state dict read with ``torch.load(weights_only=True)`` only, or
    safetensors) as a :class:`Presto`, loaded strictly: every tensor of the file used, none missing, shapes checked.
    Also returns what was read (format, key prefix, tensor counts). A foreign or damaged file is an ``EoSslError``:
    ``weights_mismatch`` (other tensors), ``unsafe_weights`` (Python objects in the pickle), ``corrupt_weights``
    (truncated, unreadable, non-finite)."""
    from backend.models.state_dicts import choose_prefix, read_weights_file

    path = Path(path)
    flat, fmt = read_weights_file(path)
    model = Presto(**DEFAULT_ARCHITECTURE)
    own = model.state_dict()
    hint = ("Give Presto's published state dict (nasaharvest/presto data/default_model.pt: encoder and decoder, "
            "as Presto.construct() saves it).")
    try:
        prefix, _ = choose_prefix(flat, set(own), path.name)
    except EoSslError as exc:
        raise EoSslError("weights_mismatch", f"{path.name} holds no Presto tensors ({exc.message})", hint) from exc
    outside = [k for k in flat if not k.startswith(prefix)]
    found = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
    _compare({**found, **{f"(outside '{prefix}') {k}": flat[k] for k in outside}}, own, path.name, hint)
    bad = [k for k, v in found.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise EoSslError("corrupt_weights", f"{path.name} holds non-finite values (NaN or inf) in "
                         f"{', '.join(bad[:4])}.", "Download the file again.")
    enc, dec = found["encoder.channel_embed.weight"], found["decoder.channel_embeddings.weight"]
    if not torch.equal(enc, dec):
        raise EoSslError("weights_mismatch", f"{path.name}: the encoder's and the decoder's channel-group embeddings "
                         "differ (Presto ties them).", hint)
    model.load_state_dict({k: v.to(torch.float32).contiguous() for k, v in found.items()}, strict=True)
    info = {"format": fmt, "key_prefix": prefix, "tensors": len(found),
            "encoder_tensors": sum(k.startswith("encoder.") for k in found),
            "decoder_tensors": sum(k.startswith("decoder.") for k in found),
            "encoder_parameters": sum(int(v.numel()) for k, v in found.items() if k.startswith("encoder.")),
            "decoder_parameters": sum(int(v.numel()) for k, v in found.items() if k.startswith("decoder."))}
    return model.eval(), info


def architecture_of(encoder: PrestoEncoder) -> dict[str, Any]:
    """``model.json`` ``architecture`` of a Presto encoder package."""
    block = encoder.blocks[0]
    dim = encoder.embedding_size
    return {"family": "presto", "encoder": "presto", "embedding_size": dim, "num_features": dim,
            "depth": len(encoder.blocks), "num_heads": block.attn.num_heads,
            "mlp_ratio": block.mlp.fc1.out_features / dim, "max_sequence_length": encoder.max_sequence_length,
            "channel_embed_ratio": encoder.channel_embed.embedding_dim / dim,
            "month_embed_ratio": encoder.month_embed.embedding_dim / dim,
            "decoder": None, "num_classes": None}


def presto_from_architecture(arch: dict[str, Any]) -> PrestoEncoder:
    """An empty (untrained) Presto encoder of a package's ``architecture``."""
    try:
        return PrestoEncoder(**{k: arch[k] for k in DEFAULT_ARCHITECTURE})
    except (KeyError, TypeError, ValueError) as exc:
        raise EoSslError("corrupt_model", f"model.json has no valid Presto architecture ({exc}).",
                         "Import the weights again.") from exc


def load_presto_package(path: str | Path) -> PrestoEncoder:
    """The Presto encoder of a package written by ``import-weights --encoder presto`` (strict: every ``encoder.*``
    tensor of the package, none missing, shapes checked), in eval mode on the CPU."""
    from backend.models.package import load_package, weights_under

    meta, state = load_package(path)
    arch = meta.get("architecture") or {}
    if arch.get("family") != "presto":
        raise EoSslError("unsupported_model", f"{path} holds a {arch.get('family') or 'unknown'} model, not Presto.",
                         "Give a package written by eo-ssl import-weights FILE --encoder presto.")
    encoder = presto_from_architecture(arch)
    found = weights_under(state, "encoder.")
    _compare(found, encoder.state_dict(), str(path), "Import the weights again (eo-ssl import-weights FILE "
             "--encoder presto).")
    encoder.load_state_dict(found, strict=True)
    return encoder.eval()
