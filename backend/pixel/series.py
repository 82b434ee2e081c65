"""A pixel time-series encoder's embedding as pixel-classifier features: Presto (published weights, imported) or
eo-ssl's own ``ts-byol`` / ``ts-barlow`` encoders (pre-trained on the area).

Both read one pixel's series on the season calendar (:mod:`backend.data.calendar`): each period's raw values (S2
reflectance x10000, S1 dB; NaN where the period has no observation at the pixel) and the month each period starts
in. :class:`SeriesEmbedding` takes them from the pixel classifier's standardised input (undoing the store's
standardisation), runs the encoder pixel by pixel (in chunks) and returns its embedding as (B, D, H, W): pointwise
features, so a model with it is still mapped tile by tile without overlap.

The encoders are a registry (:data:`SERIES_FAMILIES`: ``model.json`` ``architecture.family`` -> how to build the
empty encoder from the package's architecture and how to call it), so the pixel path, ``compare`` and ``embed`` need
no if-chain per encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import torch
from torch import nn

from backend.errors import EoSslError
from backend.models.state_dicts import load_exactly


@dataclass(frozen=True)
class SeriesFamily:
    """How to build an empty encoder of a package (its ``model.json``'s architecture, input and normalization) and
    embed (N, P, C) raw series with it."""

    build: Callable[[dict[str, Any]], nn.Module]
    embed: Callable[[nn.Module, torch.Tensor, list[tuple[str, str]], torch.Tensor, torch.Tensor | None],
                    torch.Tensor]
    #: what the family is, in words
    text: str


def _presto_build(package: dict[str, Any]) -> nn.Module:
    return import_module("backend.models.presto").presto_from_architecture(package["architecture"])


def _presto_embed(enc: nn.Module, values: torch.Tensor, channels: list[tuple[str, str]], months: torch.Tensor,
                  latlon: torch.Tensor | None) -> torch.Tensor:
    by_band = {band: values[:, :, i] for i, (_, band) in enumerate(channels)}
    assert latlon is not None
    return enc.embed(by_band, months, latlon.expand(values.shape[0], 2))


def _series_build(package: dict[str, Any]) -> nn.Module:
    return import_module("backend.models.series_encoder").encoder_from_meta(package)


def _series_embed(enc: nn.Module, values: torch.Tensor, channels: list[tuple[str, str]], months: torch.Tensor,
                  latlon: torch.Tensor | None) -> torch.Tensor:
    return enc.embed(values, channels, months)


#: ``architecture.family`` of a package -> its series encoder
SERIES_FAMILIES: dict[str, SeriesFamily] = {
    "presto": SeriesFamily(_presto_build, _presto_embed, "Presto (published pixel time-series transformer)"),
    "series": SeriesFamily(_series_build, _series_embed, "eo-ssl pixel time-series encoder (ts-byol / ts-barlow)"),
}


@dataclass
class SeriesEmbeddingSpec:
    """What :class:`SeriesEmbedding` computes (``model.json`` ``architecture.features.embedding`` with
    ``kind: series``)."""

    family: str
    package: dict[str, Any]  # the encoder package's model.json architecture, input, normalization (rebuild it)
    channels: list[tuple[str, str]]  # the (sensor, band) of the pixel input the encoder reads, in its order
    months: list[int]  # the month (0..11) each calendar period starts in
    dim: int
    latlon: list[float] | None = None  # (lat, lon) of the training area's centre (Presto's location token)
    source: dict[str, Any] = field(default_factory=dict)
    kind: str = "series"

    @property
    def out_dim(self) -> int:
        return int(self.dim)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "series", "family": self.family, "package": self.package,
                "channels": [list(c) for c in self.channels], "months": self.months, "dim": self.dim,
                "latlon": self.latlon, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesEmbeddingSpec:
        return cls(str(d["family"]), dict(d["package"]), [(str(s), str(b)) for s, b in d["channels"]],
                   [int(m) for m in d["months"]], int(d["dim"]),
                   [float(v) for v in d["latlon"]] if d.get("latlon") else None, dict(d.get("source") or {}))


class SeriesEmbedding(nn.Module):
    """(N, P, C) raw series -> (N, D): the encoder of :attr:`spec` (weights under ``encoder.``)."""

    #: pixels embedded at once (memory: a few hundred MB for Presto's tokens at most)
    CHUNK = 8192

    def __init__(self, spec: SeriesEmbeddingSpec) -> None:
        super().__init__()
        if spec.family not in SERIES_FAMILIES:
            raise EoSslError("unsupported_model", f"No pixel time-series encoder of family {spec.family!r}.",
                             f"Use a package of {', '.join(SERIES_FAMILIES)}.")
        self.spec = spec
        self.family = SERIES_FAMILIES[spec.family]
        self.encoder = self.family.build(spec.package)
        self.register_buffer("months", torch.tensor(spec.months, dtype=torch.long))
        self.register_buffer("latlon", torch.tensor([spec.latlon or [0.0, 0.0]], dtype=torch.float32))

    def load_encoder(self, state: dict[str, torch.Tensor]) -> int:
        """Load the package's encoder weights (strict); returns the count."""
        load_exactly(self.encoder, state, "weights_mismatch", f"The {self.spec.family} encoder's weights do not fit "
                     "its architecture", "Use the package as eo-ssl wrote it.")
        return len(state)

    @torch.no_grad()
    def forward(self, series: torch.Tensor) -> torch.Tensor:
        self.encoder.eval()
        out = [self.family.embed(self.encoder, series[i:i + self.CHUNK], self.spec.channels, self.months,
                                 self.latlon).float() for i in range(0, series.shape[0], self.CHUNK)]
        return torch.cat(out) if out else series.new_zeros((0, self.spec.dim))


def series_spec(meta: dict[str, Any], inp: Any, source: dict[str, Any], latlon: list[float] | None
                ) -> SeriesEmbeddingSpec:
    """The embedding of a pixel time-series package (``meta``: its ``model.json``) on the pixel input ``inp``: it
    must read a season calendar and hold the bands the encoder reads (those of the package's ``input.channels`` that
    the store has; a group the store lacks is masked by the encoder)."""
    arch = dict(meta.get("architecture") or {})
    family = str(arch.get("family"))
    if inp.calendar is None:
        raise EoSslError("bad_argument", f"A pixel time-series encoder ({family}) reads a season calendar; this "
                         "model reads one date or the acquisition dates.",
                         "Use a multi-date store without --date and without --period dates.")
    have = {(b.sensor, band) for b in inp.blocks for band in b.bands}
    wanted = [(str(s), str(b)) for s, b in (meta.get("input") or {}).get("channels") or []]
    channels = [c for c in wanted if c in have] if wanted else sorted(have)
    if not channels:
        raise EoSslError("missing_bands", f"The store has none of the bands the {family} encoder reads "
                         f"({', '.join(b for _, b in wanted)}).", "Prepare the store with those bands.")
    dim = int(arch.get("dim") or arch.get("num_features") or 0)
    if dim <= 0:
        raise EoSslError("corrupt_model", f"The {family} package does not say its embedding size.",
                         "Use the package as eo-ssl wrote it.")
    assert inp.year is not None
    return SeriesEmbeddingSpec(family, package_of(meta), channels, inp.calendar.months(inp.year), dim, latlon,
                               source)


def package_of(meta: dict[str, Any]) -> dict[str, Any]:
    """What rebuilds a pixel time-series encoder: its package's architecture, input and normalization."""
    return {k: meta.get(k) for k in ("architecture", "input", "normalization")}
