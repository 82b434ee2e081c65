"""Patch classification: a timm encoder (pooled features) + a linear or MLP head.

The MLP head is RS-BYOL's linear-evaluation head (hidden 128, BatchNorm, ReLU). ``per_band=True`` is RS-BYOL's
single-channel encoder: each band is embedded on its own and the features are averaged. Package keys: ``encoder.``
(timm's names) and ``head.``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from backend.errors import EoSslError
from backend.models.encoders import create_encoder
from backend.models.package import weights_under
from backend.models.segmentation import timm_name
from backend.models.state_dicts import LoadReport, load_matching

HEADS = ("linear", "mlp")


def build_head(kind: str, in_features: int, num_classes: int, hidden: int = 128) -> nn.Module:
    if kind == "linear":
        return nn.Linear(in_features, num_classes)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                             nn.Linear(hidden, num_classes))
    raise EoSslError("bad_argument", f"Unknown head {kind!r}.", f"Use one of: {', '.join(HEADS)}.")


def pooled_features(encoder: nn.Module, x: torch.Tensor, per_band: bool) -> torch.Tensor:
    """(B, F) pooled features; a per-band encoder embeds each band of (B, C, H, W) alone and averages."""
    if not per_band:
        return encoder(x)
    b, c = x.shape[:2]
    return encoder(x.reshape(b * c, 1, *x.shape[2:])).reshape(b, c, -1).mean(dim=1)


class ClassifierNet(nn.Module):
    """(B, C, H, W) normalised bands -> (B, K) logits."""

    def __init__(self, encoder: str, in_chans: int, num_classes: int, head: str = "linear",
                 per_band: bool = False) -> None:
        super().__init__()
        self.encoder_name, self.num_classes, self.per_band, self.head_kind = (timm_name(encoder), num_classes,
                                                                               per_band, head)
        self.enc_in_chans = 1 if per_band else in_chans
        self.encoder = create_encoder(self.encoder_name, self.enc_in_chans)
        self.head = build_head(head, int(self.encoder.num_features), num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return pooled_features(self.encoder, x, self.per_band)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @property
    def encoder_module(self) -> nn.Module:
        return self.encoder

    def package_state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"encoder.{k}": v for k, v in self.encoder.state_dict().items()}
        out.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        return out

    def load_encoder(self, timm_state: dict[str, torch.Tensor]) -> LoadReport:
        return load_matching(self.encoder, timm_state, needs=f"this {self.encoder_name}")

    def load_package_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        report = self.load_encoder(weights_under(state, "encoder."))
        if report.missing:
            raise EoSslError("corrupt_model", f"The package lacks encoder weights {', '.join(report.missing[:3])}.",
                             "Use another copy of the model.")
        try:
            self.head.load_state_dict(weights_under(state, "head."), strict=True)
        except RuntimeError as exc:
            raise EoSslError("corrupt_model", f"The package's head does not fit its model.json: {str(exc)[:300]}",
                             "Use another copy of the model.") from exc

    def describe(self) -> dict[str, Any]:
        return {"family": "timm", "encoder": self.encoder_name, "in_chans": self.enc_in_chans,
                "decoder": self.head_kind, "num_classes": self.num_classes}
