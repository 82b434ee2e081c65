"""What published encoders read: band orders and normalisations, and the torchgeo files eo-ssl recognises.

eo-ssl standardises the **raw values of the store** (Sentinel-2 L1C/L2A digital numbers = reflectance x 10,000;
Sentinel-1 in dB) with a per-band ``(x - mean) / std``. A normalisation written for another unit is converted:
``scale`` says what the raw values are divided by first, so ``(x / scale - m) / s == (x - m * scale) / (s * scale)``
and eo-ssl records ``mean = m * scale``, ``std = s * scale``. SSL4EO-S12's "divide by 10,000" is ``scale = 10000,
m = 0, s = 1``: raw mean 0, raw std 10,000.

Sources (torchgeo 0.8.1, ``torchgeo/models/resnet.py``, the version pinned in requirements.lock):

- ``_ssl4eo_s12_transforms_s2_10k``: ``Normalize(mean=0, std=10000)`` after ``Resize(256)``, ``CenterCrop(224)``: the
  transforms of ``ResNet18_Weights.SENTINEL2_ALL_MOCO``, ``ResNet50_Weights.SENTINEL2_ALL_MOCO``,
  ``SENTINEL2_ALL_DINO``, ``SENTINEL2_ALL_DECUR`` and the RGB MoCo weights. The SSL4EO-S12 authors confirm S2 was
  divided by 10,000 in pre-training (zhu-xlab/SSL4EO-S12 issues 2 and 17).
- ``_mean_s2`` / ``_std_s2`` (per-band statistics of SSL4EO-S12 L1C, raw values; used by ``SENTINEL2_ALL_SOFTCON``).
- ``_mean_s1`` / ``_std_s1`` (dB; ``SENTINEL1_ALL_MOCO``, ``SENTINEL1_ALL_DECUR``).
- Band order: the weights' ``meta['bands']``: ``B1 ... B8, B8a, B9, B10, B11, B12`` (SSL4EO-S12 L1C, 13 bands, B8A
  after B08), ``B4, B3, B2`` for the RGB weights, ``VV, VH`` for Sentinel-1.
- URLs: the weights' ``url``; torchvision's convention puts the first 8 hex digits of the file's SHA-256 at the end
  of the name (``...-59bfdff9.pth``), which is how :func:`recognise` knows a downloaded file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.data.bands import S1_BANDS, canonical_s1, canonical_s2
from backend.errors import EoSslError

Channel = tuple[str, str]

SSL4EO_S12_L1C: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
                                   "B11", "B12")
SSL4EO_RGB: tuple[str, ...] = ("B04", "B03", "B02")
#: torchgeo's ``_mean_s2`` / ``_std_s2`` in :data:`SSL4EO_S12_L1C` order (raw values)
_MEAN_S2 = (1612.9, 1397.6, 1322.3, 1373.1, 1561.0, 2108.4, 2390.7, 2318.7, 2581.0, 837.7, 22.0, 2195.2, 1537.4)
_STD_S2 = (791.0, 854.3, 878.7, 1144.9, 1127.5, 1164.2, 1276.0, 1249.5, 1345.9, 577.5, 47.5, 1340.0, 1142.9)
TORCHGEO = "torchgeo 0.8.1 torchgeo/models/resnet.py"


@dataclass(frozen=True)
class Preset:
    """A normalisation in the unit it was published in; :meth:`raw` gives eo-ssl's per-band raw mean/std."""

    name: str
    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float
    source: str

    def raw(self) -> dict[str, dict[str, float]]:
        return {b: {"mean": m * self.scale, "std": s * self.scale} for b, m, s in zip(self.bands, self.mean, self.std)}


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("ssl4eo-s12", SSL4EO_S12_L1C, (0.0,) * 13, (1.0,) * 13, 10000.0,
           f"{TORCHGEO}: _ssl4eo_s12_transforms_s2_10k, Normalize(mean=0, std=10000)"),
    Preset("ssl4eo-s12-rgb", SSL4EO_RGB, (0.0,) * 3, (1.0,) * 3, 10000.0,
           f"{TORCHGEO}: _ssl4eo_s12_transforms_s2_10k (RGB weights), Normalize(mean=0, std=10000)"),
    Preset("ssl4eo-s12-stats", SSL4EO_S12_L1C, _MEAN_S2, _STD_S2, 1.0, f"{TORCHGEO}: _mean_s2, _std_s2"),
    Preset("ssl4eo-s12-s1", S1_BANDS, (-12.59, -20.26), (5.26, 5.91), 1.0, f"{TORCHGEO}: _mean_s1, _std_s1 (dB)"),
)}


@dataclass(frozen=True)
class Known:
    """A torchgeo weight file, recognised by the SHA-256 prefix in its published name."""

    name: str
    encoder: str
    preset: str
    url: str


KNOWN: dict[str, Known] = {k.url.rsplit("-", 1)[1].split(".")[0]: k for k in (
    Known("ResNet18_Weights.SENTINEL2_ALL_MOCO", "resnet18", "ssl4eo-s12",
          "https://hf.co/torchgeo/resnet18_sentinel2_all_moco/resolve/5b8cddc9a14f3844350b7f40b85bcd32aed75918/"
          "resnet18_sentinel2_all_moco-59bfdff9.pth"),
    Known("ResNet18_Weights.SENTINEL2_RGB_MOCO", "resnet18", "ssl4eo-s12-rgb",
          "https://hf.co/torchgeo/resnet18_sentinel2_rgb_moco/resolve/e1c032e7785fd0625224cdb6699aa138bb304eec/"
          "resnet18_sentinel2_rgb_moco-e3a335e3.pth"),
    Known("ResNet50_Weights.SENTINEL2_ALL_MOCO", "resnet50", "ssl4eo-s12",
          "https://hf.co/torchgeo/resnet50_sentinel2_all_moco/resolve/da4f3c9dbe09272eb902f3b37f46635fa4726879/"
          "resnet50_sentinel2_all_moco-df8b932e.pth"),
    Known("ResNet50_Weights.SENTINEL2_ALL_DINO", "resnet50", "ssl4eo-s12",
          "https://hf.co/torchgeo/resnet50_sentinel2_all_dino/resolve/d7f14bf5530d70ac69d763e58e77e44dbecfec7c/"
          "resnet50_sentinel2_all_dino-d6c330e9.pth"),
    Known("ResNet50_Weights.SENTINEL2_ALL_DECUR", "resnet50", "ssl4eo-s12",
          "https://huggingface.co/torchgeo/decur/resolve/eba7ae5945d482a4319be046d34b552db5dd9950/"
          "rn50_ssl4eo-s12_ms_decur_ep100-fc6b09ff.pth"),
    Known("ResNet50_Weights.SENTINEL2_RGB_MOCO", "resnet50", "ssl4eo-s12-rgb",
          "https://hf.co/torchgeo/resnet50_sentinel2_rgb_moco/resolve/efd9723b59a88e9dc1420dc1e96afb25b0630a3c/"
          "resnet50_sentinel2_rgb_moco-2b57ba8b.pth"),
    Known("ResNet50_Weights.SENTINEL1_ALL_MOCO", "resnet50", "ssl4eo-s12-s1",
          "https://hf.co/torchgeo/resnet50_sentinel1_all_moco/resolve/e79862c667853c10a709bdd77ea8ffbad0e0f1cf/"
          "resnet50_sentinel1_all_moco-906e4356.pth"),
)}


def recognise(sha256: str) -> Known | None:
    """The torchgeo weights a file is, from its SHA-256 (the 8 hex digits torchgeo's file names end with)."""
    return KNOWN.get(sha256[:8])


def parse_bands(text: str) -> list[Channel]:
    """``B1,B02,b8a,VV`` -> ``[("s2", "B01"), ("s2", "B02"), ("s2", "B8A"), ("s1", "VV")]``."""
    out: list[Channel] = []
    for name in (t.strip() for t in text.replace(";", ",").split(",")):
        if not name:
            continue
        s2, s1 = canonical_s2(name), canonical_s1(name)
        if s2 is None and s1 is None:
            raise EoSslError("bad_argument", f"--bands: {name!r} is not a Sentinel-2 or Sentinel-1 band name.",
                             "Use names such as B01 ... B12, B8A, VV, VH, in the order the encoder reads them.")
        out.append(("s2", s2) if s2 is not None else ("s1", str(s1)))
    if len(set(out)) != len(out):
        raise EoSslError("bad_argument", f"--bands {text!r} names a band twice.", "Name each band once.")
    if not out:
        raise EoSslError("bad_argument", "--bands is empty.", "Name the bands the encoder reads, in its order.")
    return out


def _number_list(value: Any, n: int, key: str, where: str) -> list[float]:
    values = [value] * n if isinstance(value, (int, float)) else list(value)
    if len(values) != n or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise EoSslError("bad_normalisation", f"{where}: '{key}' must be a number or a list of {n} numbers.",
                         "Give one value per band, in the order of --bands.")
    return [float(v) for v in values]


def read_normalisation(spec: str, channels: Sequence[Channel]) -> tuple[dict[str, dict[str, dict[str, float]]], str]:
    """``--normalisation``: a preset name or a JSON file -> ({sensor: {band: {mean, std}}} on raw values, source).

    A JSON file holds ``mean`` and ``std`` (lists in the order of ``--bands``, or single numbers) or ``bands``
    (``{"B02": {"mean": ..., "std": ...}}``), and optionally ``scale`` (what raw values are divided by before the
    mean/std apply: 10000 for statistics of reflectance)."""
    if spec in PRESETS:
        preset = PRESETS[spec]
        per_band, source = preset.raw(), f"preset {spec} ({preset.source})"
    else:
        path = Path(spec)
        if not path.is_file():
            raise EoSslError("bad_normalisation", f"--normalisation {spec!r} is neither a preset nor a file.",
                             f"Presets: {', '.join(PRESETS)}; or a JSON file with mean, std (and scale).")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EoSslError("bad_normalisation", f"{path} is not JSON: {exc}", "Check the file.") from exc
        if not isinstance(data, dict):
            raise EoSslError("bad_normalisation", f"{path} is not a JSON object.", "Write {\"mean\": [...], ...}.")
        scale = float(data.get("scale", 1.0))
        if not math.isfinite(scale) or scale <= 0:
            raise EoSslError("bad_normalisation", f"{path}: scale {scale} must be a positive number.", "")
        names = [b for _, b in channels]
        if isinstance(data.get("bands"), dict):
            rows = {str(canonical_s2(k) or canonical_s1(k) or k): v for k, v in data["bands"].items()}
            lacking = [b for b in names if b not in rows]
            if lacking:
                raise EoSslError("bad_normalisation", f"{path} has no mean/std for {', '.join(lacking)}.",
                                 "Describe every band of --bands.")
            mean = [float(rows[b]["mean"]) for b in names]
            std = [float(rows[b]["std"]) for b in names]
        elif "mean" in data and "std" in data:
            mean = _number_list(data["mean"], len(names), "mean", str(path))
            std = _number_list(data["std"], len(names), "std", str(path))
        else:
            raise EoSslError("bad_normalisation", f"{path} has neither 'mean' and 'std' nor 'bands'.",
                             "Write {\"mean\": [...], \"std\": [...], \"scale\": 10000} in the order of --bands.")
        per_band = {b: {"mean": m * scale, "std": s * scale} for b, m, s in zip(names, mean, std)}
        source = f"file {path.resolve()} (scale {scale:g})"
    out: dict[str, dict[str, dict[str, float]]] = {}
    for sensor, band in channels:
        if band not in per_band:
            raise EoSslError("bad_normalisation", f"The normalisation {spec} does not describe {band}.",
                             "Use a normalisation for the bands of --bands.")
        if per_band[band]["std"] <= 0:
            raise EoSslError("bad_normalisation", f"The normalisation gives {band} a std of "
                             f"{per_band[band]['std']}.", "Every std must be positive.")
        out.setdefault(sensor, {})[band] = dict(per_band[band])
    return out, source


def preset_channels(name: str) -> list[Channel]:
    bands = PRESETS[name].bands
    return [("s1" if b in S1_BANDS else "s2", b) for b in bands]


def describe_known(known: Known) -> Mapping[str, Any]:
    return {"torchgeo_weights": known.name, "url": known.url, "preset": known.preset}
