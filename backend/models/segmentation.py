"""Segmentation networks: segmentation_models_pytorch U-Net, DeepLabV3+ and DeepLabV3 over any timm encoder.

The encoder is smp's timm-universal encoder (``tu-<timm name>``), so every timm backbone eo-ssl pre-trains
(``backend.models.encoders``) also works here. A package keeps the encoder under ``encoder.`` with **timm's own key
names** (as pre-training writes them), the decoder under ``decoder.`` and the 1x1 classifier under ``head.``: the
encoder of a fine-tuned package can initialise another model, and a pre-trained encoder loads into any decoder.

timm's ``features_only`` wrapper (which smp uses) renames the children of flattened ``nn.Sequential`` stems and
stages (``stem.0.weight`` -> ``stem_0.weight``, as in ConvNeXt) and drops the classifier-side layers it does not use
(``head.norm``, EfficientNet's ``conv_head``). :func:`encoder_key_map` maps the two namings, built from a real timm
model of the same name, so the mapping is checked rather than guessed; ResNets keep identical names.

``per_band=True`` is RS-BYOL's single-channel encoder: every band goes through the same 1-channel encoder and each
feature map of the pyramid is the mean over bands, so the decoder sees one pyramid whatever the number of bands.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import torch
from torch import nn

from backend.errors import EoSslError
from backend.models.encoders import ALIASES
from backend.models.package import weights_under
from backend.models.state_dicts import LoadReport, load_matching

ARCHS = ("unet", "deeplabv3plus", "deeplabv3")


def timm_name(encoder: str) -> str:
    return ALIASES.get(encoder, encoder)


@functools.lru_cache(maxsize=16)
def _timm_keys(encoder: str, in_chans: int) -> tuple[str, ...]:
    import timm

    model = timm.create_model(timm_name(encoder), pretrained=False, in_chans=in_chans, num_classes=0)
    return tuple(model.state_dict().keys())


def encoder_key_map(encoder: str, in_chans: int, smp_keys: list[str]) -> dict[str, str]:
    """timm key -> key of smp's encoder (``model.`` + features_only name) for every timm key smp's encoder has."""
    smp_set = set(smp_keys)
    out: dict[str, str] = {}
    for key in _timm_keys(encoder, in_chans):
        for cand in (f"model.{key}", "model." + key.replace(".", "_", 1)):
            if cand in smp_set:
                out[key] = cand
                break
    return out


class PerBandEncoder(nn.Module):
    """An smp encoder with 1 input channel applied to every band; each pyramid level is averaged over bands."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.inner = encoder

    @property
    def out_channels(self) -> list[int]:
        return self.inner.out_channels

    @property
    def output_stride(self) -> int:
        return self.inner.output_stride

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b, c = x.shape[:2]
        feats = self.inner(x.reshape(b * c, 1, *x.shape[2:]))
        return [f.reshape(b, c, *f.shape[1:]).mean(dim=1) for f in feats]


class SegmentationNet(nn.Module):
    """(B, C, H, W) normalised bands -> (B, K, H, W) logits. H and W must be multiples of 32."""

    def __init__(self, encoder: str, in_chans: int, num_classes: int, arch: str = "unet",
                 per_band: bool = False) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        if arch not in ARCHS:
            raise EoSslError("bad_argument", f"Unknown segmentation architecture {arch!r}.",
                             f"Use one of: {', '.join(ARCHS)}.")
        cls = {"unet": smp.Unet, "deeplabv3plus": smp.DeepLabV3Plus, "deeplabv3": smp.DeepLabV3}[arch]
        self.encoder_name, self.arch, self.num_classes, self.per_band = timm_name(encoder), arch, num_classes, per_band
        self.enc_in_chans = 1 if per_band else in_chans
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.net = cls(encoder_name=f"tu-{self.encoder_name}", encoder_weights=None,
                               in_channels=self.enc_in_chans, classes=num_classes)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise EoSslError("unknown_encoder", f"Encoder {encoder!r} cannot be used with {arch}: {exc}",
                             "Use a timm CNN such as resnet18 or resnet50.") from exc
        if per_band:
            self.net.encoder = PerBandEncoder(self.net.encoder)
        smp_keys = list(self.smp_encoder.state_dict().keys())
        self._t2s = encoder_key_map(self.encoder_name, self.enc_in_chans, smp_keys)
        self._s2t = {v: k for k, v in self._t2s.items()}
        unmapped = [k for k in smp_keys if k not in self._s2t]
        if unmapped:  # would silently drop pre-trained weights: refuse rather than guess
            raise EoSslError("unknown_encoder", f"Cannot map smp's encoder keys of {encoder!r} to timm's "
                             f"({', '.join(unmapped[:3])}).", "Use a timm CNN such as resnet18 or resnet50.")

    @property
    def smp_encoder(self) -> nn.Module:
        enc = self.net.encoder
        return enc.inner if isinstance(enc, PerBandEncoder) else enc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def encoder_module(self) -> nn.Module:
        """The encoder as the decoder calls it (per-band wrapper included)."""
        return self.net.encoder

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The deepest feature map of the encoder (B, F, H/s, W/s)."""
        return self.net.encoder(x)[-1]

    # -- package state dicts -------------------------------------------------------------------------------
    def package_state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"encoder.{self._s2t[k]}": v for k, v in self.smp_encoder.state_dict().items()}
        out.update({f"decoder.{k}": v for k, v in self.net.decoder.state_dict().items()})
        out.update({f"head.{k}": v for k, v in self.net.segmentation_head.state_dict().items()})
        return out

    def load_package_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a whole segmentation package (encoder, decoder, head); any mismatch is an error."""
        report = self.load_encoder(weights_under(state, "encoder."))
        if report.missing:
            raise EoSslError("corrupt_model", f"The package lacks encoder weights {', '.join(report.missing[:3])}.",
                             "Use another copy of the model.")
        for prefix, module in (("decoder.", self.net.decoder), ("head.", self.net.segmentation_head)):
            part = weights_under(state, prefix)
            try:
                module.load_state_dict(part, strict=True)
            except RuntimeError as exc:
                raise EoSslError("corrupt_model", f"The package's {prefix[:-1]} weights do not fit its model.json "
                                 f"architecture: {str(exc)[:300]}", "Use another copy of the model.") from exc

    def load_encoder(self, timm_state: dict[str, torch.Tensor]) -> LoadReport:
        """Load encoder weights named as timm names them (no ``encoder.`` prefix)."""
        report = load_matching(self.smp_encoder, timm_state, target=self._t2s.get, needs=f"this {self.encoder_name}")
        report.missing = [self._s2t[k] for k in report.missing]
        return report

    def describe(self) -> dict[str, Any]:
        """``model.json`` ``architecture``."""
        return {"family": "smp", "encoder": self.encoder_name, "in_chans": self.enc_in_chans,
                "decoder": self.arch, "num_classes": self.num_classes}
