"""What a model reads: its input channels in order, their normalisation, and how data are matched to them.

Data are matched to a model by band name (``(sensor, band)`` pairs, as in ``model.json`` ``input.channels``), never
by position: a band the model reads and the data lack is an error (``missing_bands``) before any work; bands the data
have and the model does not read are dropped with a warning (``extra_bands``). Normalisation travels with the model:
a model initialised from a package keeps the package's per-band mean/std, so the features it learnt in pre-training
see the same numbers; bands the package does not describe fall back to the data's own statistics (with a warning).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.errors import EoSslError

Channel = tuple[str, str]
Warn = Callable[[str, str], None]
SENSOR_NAMES = {"s2": "Sentinel-2", "s1": "Sentinel-1"}


@dataclass
class InputSpec:
    """The channels a model reads, in order, with their mean/std and how they are fed to the encoder."""

    channels: list[Channel]
    mean: np.ndarray
    std: np.ndarray
    channel_mode: str = "stack"  # or "per-band": each band through a 1-channel encoder, features averaged

    @property
    def per_band(self) -> bool:
        return self.channel_mode == "per-band"

    @property
    def in_chans(self) -> int:
        """Channels of the encoder's input (1 for a per-band encoder)."""
        return 1 if self.per_band else len(self.channels)

    @property
    def sensors(self) -> list[str]:
        return list(dict.fromkeys(s for s, _ in self.channels))

    def bands(self, sensor: str) -> list[str]:
        return [b for s, b in self.channels if s == sensor]

    def normalization(self) -> dict[str, dict[str, dict[str, float]]]:
        """``model.json`` ``normalization``: {sensor: {band: {mean, std}}}."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for (s, b), m, sd in zip(self.channels, self.mean, self.std):
            out.setdefault(s, {})[b] = {"mean": float(m), "std": float(sd)}
        return out

    def input_meta(self, **extra: Any) -> dict[str, Any]:
        """``model.json`` ``input``."""
        return {"channels": [[s, b] for s, b in self.channels], "channel_mode": self.channel_mode, **extra}

    def normalize(self, x: np.ndarray, valid: np.ndarray | None = None, channel_axis: int = 0) -> np.ndarray:
        """(C, ...) raw values (channels on ``channel_axis``) -> standardised float32 in place where possible; 0 (the
        mean) where ``valid`` (the shape of ``x`` without the channel axis) is False."""
        x = np.asarray(x, dtype=np.float32)
        shape = [1] * x.ndim
        shape[channel_axis] = -1
        x -= self.mean.reshape(shape)
        x /= self.std.reshape(shape)
        if valid is not None:
            np.copyto(x, np.float32(0), where=~np.expand_dims(valid, channel_axis))
        return x


def describe(channels: Sequence[Channel]) -> str:
    return ", ".join(f"{s.upper()} {b}" for s, b in channels)


def match_channels(channels: Sequence[Channel], available: Mapping[str, Sequence[str]], what: str,
                   warn: Warn | None = None) -> list[tuple[str, int]]:
    """For each model channel, (sensor, index into that sensor's bands of the data).

    ``available``: the data's bands per sensor, in the data's order; ``what`` names the data in messages.
    """
    missing = [(s, b) for s, b in channels if b not in list(available.get(s, []))]
    if missing:
        have = "; ".join(f"{SENSOR_NAMES.get(s, s)}: {', '.join(bands)}" for s, bands in available.items()) or "none"
        sensors_missing = sorted({s for s, _ in missing if s not in available})
        hint = ("Give the same bands the model was trained on"
                + (f" (add --{sensors_missing[0]} ... for {SENSOR_NAMES.get(sensors_missing[0], sensors_missing[0])})"
                   if sensors_missing else "")
                + ", or name the file's bands (--s2-bands / --s1-bands) if they are misnamed.")
        raise EoSslError("missing_bands", f"The model reads {describe(channels)}; {what} lack "
                         f"{describe(missing)} (they have {have}).", hint)
    wanted = set(channels)
    extra = [(s, b) for s, bands in available.items() for b in bands if (s, b) not in wanted]
    if extra and warn is not None:
        warn("extra_bands", f"{what} have bands the model does not read; they are dropped: {describe(extra)}.")
    return [(s, list(available[s]).index(b)) for s, b in channels]


def spec_from_stats(channels: Sequence[Channel], stats: Mapping[str, Mapping[str, Mapping[str, float]]],
                    channel_mode: str = "stack") -> InputSpec:
    """An InputSpec whose mean/std come from ``stats`` ({sensor: {band: {mean, std}}}, e.g. a chip store's)."""
    mean = np.array([stats[s][b]["mean"] for s, b in channels], np.float32)
    std = np.array([max(float(stats[s][b]["std"]), 1e-6) for s, b in channels], np.float32)
    return InputSpec([tuple(c) for c in channels], mean, std, channel_mode)  # type: ignore[misc]


def spec_from_meta(meta: Mapping[str, Any], fallback: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
                   warn: Warn | None = None) -> InputSpec:
    """The InputSpec of a model package; bands its ``normalization`` lacks come from ``fallback`` (with a warning)."""
    inp = meta.get("input") or {}
    channels = [(str(s), str(b)) for s, b in inp.get("channels", [])]
    if not channels:
        raise EoSslError("corrupt_model", "The model package names no input channels (model.json input.channels).",
                         "Use a package written by eo-ssl pretrain or finetune.")
    norm = meta.get("normalization") or {}
    mean, std, fell_back = [], [], []
    for s, b in channels:
        entry = (norm.get(s) or {}).get(b)
        if entry is None:
            if fallback is None or b not in (fallback.get(s) or {}):
                raise EoSslError("corrupt_model", f"The model package has no normalisation for {s.upper()} {b}.",
                                 "Use a package written by eo-ssl pretrain or finetune.")
            entry = fallback[s][b]
            fell_back.append((s, b))
        mean.append(float(entry["mean"]))
        std.append(max(float(entry["std"]), 1e-6))
    if fell_back and warn is not None:
        warn("normalization_fallback", f"The model package has no normalisation for {describe(fell_back)}; "
             "the data's own statistics are used for them.")
    return InputSpec(channels, np.array(mean, np.float32), np.array(std, np.float32),
                     str(inp.get("channel_mode") or "stack"))
