"""The SSL methods by name (like timm's / lightly's registries): name -> LightningModule class.

Add an image-level method by writing one module with an :class:`backend.ssl.base.SSLMethod` subclass and a line
here. Every entry has ``name``, ``VARIANTS``, ``level`` (``image``: an encoder of chips; ``pixel``: per-pixel
features over time series, :class:`backend.ssl.dense_moco.DenseMoCo`; ``series``: an encoder of one pixel's series on
a season calendar, :class:`backend.ssl.series.SeriesMethod`) and ``set_keys()`` (what ``--set`` accepts);
``eo-ssl pretrain`` runs a method by its ``level``.
"""

from __future__ import annotations

from backend.errors import EoSslError
from backend.ssl.barlow_twins import BarlowTwins
from backend.ssl.base import SSLMethod
from backend.ssl.byol import BYOL
from backend.ssl.dense_moco import DenseMoCo
from backend.ssl.moco_v2 import MoCoV2
from backend.ssl.rs_byol import RSBYOL
from backend.ssl.simsiam import SimSiam
from backend.ssl.swav import SwAV
from backend.ssl.ts_barlow import TSBarlow
from backend.ssl.ts_byol import TSBYOL

#: the image-level methods
IMAGE_METHODS: dict[str, type[SSLMethod]] = {cls.name: cls for cls in (RSBYOL, BYOL, MoCoV2, SimSiam, BarlowTwins,
                                                                       SwAV)}
#: the pixel time-series methods (level ``series``)
SERIES_METHODS: dict[str, type[SSLMethod]] = {cls.name: cls for cls in (TSBYOL, TSBarlow)}
METHODS: dict[str, type] = {**IMAGE_METHODS, DenseMoCo.name: DenseMoCo, **SERIES_METHODS}


def get_method(name: str) -> type:
    try:
        return METHODS[name]
    except KeyError:
        raise EoSslError("unknown_method", f"Unknown pre-training method {name!r}.",
                         f"Use one of: {', '.join(METHODS)}.") from None
