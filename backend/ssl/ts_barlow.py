"""TS-Barlow: Barlow Twins over pixel time series, with RS-BYOL's sensor-against-sensor views in time.

The series half (encoder, views) is :class:`backend.ssl.series.SeriesMethod`; the projector and the
cross-correlation loss (gathered over DDP ranks) are :class:`backend.ssl.barlow_twins.BarlowTwins`' (lightly's),
with a 512-wide projector for a 64-d encoder and AdamW.
"""

from __future__ import annotations

from typing import Any

from backend.ssl.barlow_twins import BarlowTwins
from backend.ssl.series import SERIES_DEFAULTS, SeriesMethod


class TSBarlow(SeriesMethod, BarlowTwins):
    name = "ts-barlow"
    DEFAULTS: dict[str, Any] = {**BarlowTwins.DEFAULTS, **SERIES_DEFAULTS, "proj_hidden": 512, "proj_dim": 512,
                                "lambda_param": 5e-3}
