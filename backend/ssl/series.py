"""What the pixel time-series methods (``ts-byol``, ``ts-barlow``) share: the series encoder, the views, the steps.

RS-BYOL's idea (two sensors of one place are two views of it) in time rather than in space: a sample is one pixel's
series on the season calendar (:mod:`backend.ssl.pixel_series`: ``values`` (B, P, C) raw, NaN where a period holds
no observation, ``months`` (B, P)), the encoder is :class:`backend.models.series_encoder.SeriesEncoder`, and
:func:`series_views` makes the two views of each pixel:

- **sensor against sensor** (with probability ``cross_sensor``, when the data hold a second sensor and the pixel has
  observations of both): one view is the Sentinel-2 series, the other the Sentinel-1 series of the same pixel;
- otherwise both views hold every sensor;
- then, in each view on its own, **periods dropped** (each with probability ``period_drop``: all its channels NaN,
  i.e. masked by the encoder; at least one observed period is kept) and **bands dropped** (each with probability
  ``band_drop``: NaN in every period, read by the encoder as the band's mean; at least one band of each sensor is
  kept).

A method is a :class:`SeriesMethod` mixed into an image method for its heads and loss (``class TSBYOL(SeriesMethod,
BYOL)``): the heads, loss, EMA, optimiser schedule, collapse monitor and export are the image method's and
:class:`backend.ssl.base.SSLMethod`'s; the views are pairs ``(values, months)``, which the series encoder takes as
its one argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from backend.models.series_encoder import ARCH_DEFAULTS, NAME, SeriesEncoder
from backend.ssl.base import COMMON_DEFAULTS, SSLMethod

#: the series methods' options (``--set``), on top of the image method's they are mixed into
SERIES_DEFAULTS: dict[str, Any] = {
    "encoder": NAME, "crop": None, **ARCH_DEFAULTS,
    "period_drop": 0.3, "band_drop": 0.2, "cross_sensor": 0.5,
    "period": "month", "season": None,  # the calendar (backend.data.calendar), as the pixel classifiers' options
    "optimizer": "adamw", "base_lr": 1e-3, "weight_decay": 0.05, "batch_size": 256,
}
#: keys a series method does not take from ``--set`` (its encoder is the series transformer; a sample is a pixel)
NOT_SET = ("encoder", "crop")

View = tuple[torch.Tensor, torch.Tensor]


def _rand(shape: Sequence[int], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(*shape, generator=generator, device=like.device)


def drop_bands_and_periods(values: torch.Tensor, groups: Sequence[Sequence[int]], period_drop: float,
                           band_drop: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """One view's drops (see the module docstring) of ``values`` (B, P, C): a new tensor, NaN where dropped."""
    b, p, c = values.shape
    v = values
    if band_drop > 0:
        drop = _rand((b, c), v, generator) < band_drop
        for g in groups:
            everything = drop[:, list(g)].all(dim=1)
            drop[:, list(g)] &= ~everything[:, None]  # a sensor keeps all its bands rather than none
        v = v.masked_fill(drop[:, None, :], float("nan"))
    if period_drop > 0:
        observed = ~torch.isnan(v).all(dim=2)
        drop = _rand((b, p), v, generator) < period_drop
        drop &= (observed & ~drop).any(dim=1, keepdim=True)  # a pixel keeps all its periods rather than none
        v = v.masked_fill(drop[..., None], float("nan"))
    return v if v is not values else values.clone()


def series_views(values: torch.Tensor, groups: Sequence[Sequence[int]], *, period_drop: float, band_drop: float,
                 cross_sensor: float, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two views (B, P, C) of ``values`` (B, P, C) raw with NaN, and which samples were split by sensor (B,) bool.
    ``groups``: the channel indices of each sensor, the first sensor's (Sentinel-2's) first."""
    b = values.shape[0]
    v1, v2 = values, values
    cross = torch.zeros(b, dtype=torch.bool, device=values.device)
    if len(groups) > 1 and cross_sensor > 0:
        first = torch.zeros(values.shape[2], dtype=torch.bool, device=values.device)
        first[list(groups[0])] = True
        observed = ~torch.isnan(values)
        both = observed[..., first].any(dim=(1, 2)) & observed[..., ~first].any(dim=(1, 2))
        cross = (_rand((b,), values, generator) < cross_sensor) & both
        v1 = values.masked_fill(cross[:, None, None] & ~first, float("nan"))  # the first sensor only
        v2 = values.masked_fill(cross[:, None, None] & first, float("nan"))  # the others only
    return (drop_bands_and_periods(v1, groups, period_drop, band_drop, generator),
            drop_bands_and_periods(v2, groups, period_drop, band_drop, generator), cross)


class SeriesMethod(SSLMethod):
    """The series half of a series method (see the module docstring). ``config`` holds, besides the options, what
    the data say: ``channels`` ((sensor, band) pairs), ``mean``/``std`` (raw units), ``calendar``, ``months``,
    ``periods`` (the period labels)."""

    #: a pixel's time series (``backend.train.pretrain_series`` runs it)
    level: ClassVar[str] = "series"

    @classmethod
    def set_keys(cls) -> list[str]:
        return [k for k in {**COMMON_DEFAULTS, **cls.DEFAULTS} if k not in NOT_SET]

    def in_chans(self) -> int:
        return len(self.config["channels"])

    def build_encoder(self) -> nn.Module:
        cfg = self.config
        return SeriesEncoder(cfg["channels"], cfg["mean"], cfg["std"], calendar=cfg.get("calendar"),
                             **{k: cfg[k] for k in ARCH_DEFAULTS})

    def build_augment(self) -> nn.Module:
        return nn.Identity()  # the views are series_views'

    def groups(self) -> list[list[int]]:
        encoder = self.encoder
        assert isinstance(encoder, SeriesEncoder)
        return list(encoder.group_index.values())

    def input_spec(self) -> dict[str, Any]:
        """``model.json`` ``input``: the channels in order, and the calendar the series are read on."""
        cfg = self.config
        return {"channels": [[s, b] for s, b in cfg["channels"]], "channel_mode": "series",
                "layout": "period-channel", "dates": "calendar", "calendar": cfg["calendar"],
                "periods": list(cfg["periods"]), "months": list(cfg["months"]), "time_steps": len(cfg["months"]),
                "crop": 1}

    def make_views(self, batch: dict[str, torch.Tensor]) -> tuple[View, View]:  # type: ignore[override]
        cfg = self.config
        v1, v2, _ = series_views(batch["values"], self.groups(), period_drop=float(cfg["period_drop"]),
                                 band_drop=float(cfg["band_drop"]), cross_sensor=float(cfg["cross_sensor"]))
        return (v1, batch["months"]), (v2, batch["months"])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        v1, v2 = self.make_views(batch)
        loss, projection, features = self.forward_loss(v1, v2)  # type: ignore[arg-type]
        self.collapse.update(projection, features)
        return loss

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {**super().describe(),
                "views": f"per pixel: S2 series vs S1 series with probability {cfg['cross_sensor']} (when both are "
                         f"observed), else both sensors; then in each view periods dropped with probability "
                         f"{cfg['period_drop']} and bands with probability {cfg['band_drop']}"}
