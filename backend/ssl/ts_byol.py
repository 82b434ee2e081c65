"""TS-BYOL: BYOL over pixel time series, with RS-BYOL's sensor-against-sensor views in time.

The series half (encoder, views) is :class:`backend.ssl.series.SeriesMethod`; the online projector and predictor,
the momentum target, the symmetric normalised-MSE loss and the cosine EMA schedule are
:class:`backend.ssl.byol.BYOL`'s (lightly's heads and helpers), with narrower heads for a 64-d encoder and AdamW.
"""

from __future__ import annotations

from typing import Any

from backend.ssl.byol import BYOL
from backend.ssl.series import SERIES_DEFAULTS, SeriesMethod


class TSBYOL(SeriesMethod, BYOL):
    name = "ts-byol"
    DEFAULTS: dict[str, Any] = {**BYOL.DEFAULTS, **SERIES_DEFAULTS, "proj_hidden": 512, "proj_dim": 128,
                                "momentum": 0.99}
