"""Fit a pixel classifier on the labelled pixels of a cube: ``eo-ssl finetune --arch pixel``.

1. Training pixels: the training split's parcels (a label fraction of them, drawn by parcel as for the U-Net), at
   most ``max_pixels`` spread evenly over the parcels.
2. Features (:class:`~backend.pixel.features.PixelFeatures`): spectra of every date (+ temporal statistics), and with
   ``--init PACKAGE`` the encoder's per-pixel embedding, projected on principal components fitted on unlabelled
   pixels of the whole store.
3. The classifier: one of the registry, or ``auto``: each candidate (logistic regression, gradient boosting, random
   forest, the soft vote of logistic regression and random forest; each on the spectra alone and, with an encoder,
   on spectra + embedding) is scored by cross-validation
   **grouped by parcel** on the training parcels (a parcel's pixels are never on both sides of a fold), and the best
   mIoU wins. The validation split is never used to choose: it stays an honest score.
4. Scored on the validation split's parcels (which the model never saw); the package says how many.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from backend.data.chipstore import ChipStore
from backend.errors import EoSslError
from backend.events import Events
from backend.pixel.classifiers import CLASSIFIERS
from backend.pixel.data import (
    WINDOW,
    Pixels,
    compute_features,
    labelled_pixels,
    pixel_input,
    read_inputs,
    sample_by_parcel,
    windowed,
)
from backend.pixel.features import EmbeddingSpec, PixelFeatures, PixelInput
from backend.pixel.model import PixelClassifier
from backend.pixel.series import SeriesEmbeddingSpec
from backend.report.metrics import confusion, scores

#: the candidates of ``--classifier auto``, in order of preference when they tie (simplest first)
AUTO_CANDIDATES = ("linear", "gbm", "rf", "vote")
#: ``--quick``: the candidates of a first map in seconds (the two cheapest; the vote is the robust default)
QUICK_CANDIDATES = ("linear", "vote")
#: ``--quick``: training pixels at most
QUICK_MAX_PIXELS = 3000
#: the default ``auto`` keeps unless cross-validation shows a clear winner (see :func:`select`): the steadiest with
#: few parcels (benchmarks/results/pixel_ablation.md)
ROBUST = "vote"
#: parcels of the smallest class below which cross-validation does not choose
MIN_CV_PARCELS = 3
DEFAULT_LEVELS = [0, 1, 2, 3]
DEFAULT_EMBEDDING_DIM = 32
CV_PIXELS = 6000


def embedding_spec(init_meta: dict[str, Any], inp: PixelInput, dim: int | None, levels: list[int] | None,
                   source: dict[str, Any]) -> EmbeddingSpec:
    """The embedding of a pre-training (or fine-tuned) package's encoder, reading its own bands and normalisation."""
    from backend.models.inputs import spec_from_meta

    arch = init_meta.get("architecture") or {}
    if arch.get("family") not in ("timm", "smp"):
        raise EoSslError("unsupported_model", f"The package holds a {arch.get('family')} model; the pixel "
                         "embedding takes timm CNN encoders (packages of eo-ssl pretrain with image-level methods) "
                         "and pixel time-series encoders (Presto, ts-byol, ts-barlow).",
                         "Use --init with a package of eo-ssl pretrain --method moco-v2|byol|rs-byol|ts-byol|..., "
                         "or of eo-ssl import-weights --encoder presto.")
    fallback = {b.sensor: {band: {"mean": m, "std": s} for band, m, s in zip(b.bands, b.mean, b.std)}
                for b in inp.blocks}
    spec = spec_from_meta(init_meta, fallback=fallback)
    return EmbeddingSpec(encoder=str(arch["encoder"]), in_chans=int(arch.get("in_chans") or len(spec.channels)),
                         channel_mode=spec.channel_mode, channels=list(spec.channels),
                         mean=[float(v) for v in spec.mean], std=[float(v) for v in spec.std],
                         levels=list(levels or DEFAULT_LEVELS), dim=dim or None, source=source)


def init_embedding(init: Any, inp: PixelInput, dim: int | None, store: ChipStore,
                   template: dict[str, Any] | None = None, strict: bool = False
                   ) -> tuple[Any, dict[str, torch.Tensor] | None]:
    """(embedding spec, encoder weights) of a ``--init`` (:class:`backend.train.init_source.InitSource`) for the
    pixel classifiers: an image CNN (timm/smp, a package or random) or a pixel time-series encoder (Presto,
    ts-byol: a package, or random with the architecture of ``template``, a package's ``model.json``);
    (None, None) for ``none`` and for models the pixel path cannot read (a dense-moco backbone; ``strict``: an
    ``unsupported_model`` error)."""
    from backend.pixel.series import SERIES_FAMILIES, SeriesEmbedding, series_spec

    if init is None or init.kind == "none":
        return None, None
    if init.encoder in SERIES_FAMILIES or ((init.meta or {}).get("architecture") or {}).get("family") \
            in SERIES_FAMILIES:
        meta = init.meta if init.kind == "package" else template
        if meta is None:
            return None, None
        spec = series_spec(meta, inp, init.provenance(), store_latlon(store))
        if init.kind != "package":  # the same architecture at random initialisation
            torch.manual_seed(0)
            return spec, SeriesEmbedding(spec).encoder.state_dict()
        return spec, init.encoder_state
    if init.kind == "random":
        from backend.models.encoders import create_encoder

        n = sum(len(b.bands) for b in inp.blocks)
        meta = {"architecture": {"family": "timm", "encoder": init.encoder, "in_chans": n},
                "input": {"channels": [[b.sensor, band] for b in inp.blocks for band in b.bands]}}
        torch.manual_seed(0)
        return embedding_spec(meta, inp, dim, None, init.provenance()), create_encoder(init.encoder, n).state_dict()
    family = ((init.meta or {}).get("architecture") or {}).get("family")
    if family not in ("timm", "smp") and not strict:
        return None, None
    return embedding_spec(init.meta or {}, inp, dim, None, init.provenance()), init.encoder_state


def store_latlon(store: ChipStore) -> list[float] | None:
    """(lat, lon) in degrees of the centre of a cube's grid (Presto's location token); None when unknown."""
    return grid_latlon(store.manifest.get("grid") or {})


def grid_latlon(grid: dict[str, Any]) -> list[float] | None:
    """(lat, lon) in degrees of the centre of a grid (``Grid.to_dict()``); None when unknown."""
    try:
        from pyproj import CRS, Transformer

        t = grid["transform"]
        x = t[2] + t[0] * grid["width"] / 2 + t[1] * grid["height"] / 2
        y = t[5] + t[3] * grid["width"] / 2 + t[4] * grid["height"] / 2
        lon, lat = Transformer.from_crs(CRS.from_wkt(grid["crs"]), CRS.from_epsg(4326), always_xy=True).transform(x, y)
        return [float(lat), float(lon)]
    except (KeyError, ValueError, TypeError, ImportError):
        return None


@torch.no_grad()
def fit_projection(features: PixelFeatures, store: ChipStore, inp: PixelInput, seed: int,
                   n_windows: int = 12, n_pixels: int = 40000) -> None:
    """Principal components of the embedding's pyramid over unlabelled pixels of random windows of the store."""
    emb = features.embedding
    assert emb is not None and emb.spec.dim
    h, w = store.shape
    size = min(WINDOW, h, w) // 32 * 32 or min(h, w)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_windows):
        r, c = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        x = torch.from_numpy(read_inputs(store, inp, slice(r, r + size), slice(c, c + size)))[None]
        pyr = emb.pyramid(features.composite(x))[0].flatten(1).T  # (size², P)
        samples.append(pyr[torch.from_numpy(rng.choice(len(pyr), min(len(pyr), n_pixels // n_windows),
                                                       replace=False))])
    data = torch.cat(samples).double()
    mean = data.mean(0)
    _, _, v = torch.linalg.svd(data - mean, full_matrices=False)
    k = min(int(emb.spec.dim), v.shape[0])
    comps = torch.zeros(emb.spec.dim, data.shape[1], dtype=torch.float64)
    comps[:k] = v[:k]
    emb.pca_mean.copy_(mean.float())
    emb.pca_components.copy_(comps.float())


def miou_of(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    s = scores(confusion(torch.from_numpy(y), torch.from_numpy(pred), k).numpy())
    return float(s["miou"] or 0.0)


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-6, std, 1.0)
    return (x - mean) / std, mean, std


def _predict(name: str, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, k: int, seed: int) -> np.ndarray:
    if len(np.unique(y_tr)) < 2:  # a fold whose training part holds one class (a class of one or two parcels)
        return np.full(len(x_te), y_tr[0] if len(y_tr) else 0)
    z_tr, mean, std = _standardise(x_tr)
    head = CLASSIFIERS[name].fit(z_tr.astype(np.float32), y_tr, k, seed)
    with torch.no_grad():
        return head(torch.from_numpy(((x_te - mean) / std).astype(np.float32))).argmax(1).numpy()


@dataclass
class Selection:
    classifier: str
    with_embedding: bool
    table: list[dict[str, Any]] = field(default_factory=list)
    folds: int = 0
    #: the cross-validated mIoU of the kept candidate (out-of-fold predictions of every training parcel)
    cv_miou: float | None = None
    #: why the kept candidate was kept: "best" (it beat the robust default by more than the folds' noise) or the
    #: reason the robust default was kept instead
    reason: str = "best"


def _fold_scores(y: np.ndarray, pred: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], k: int) -> list[float]:
    return [miou_of(y[te], pred[te], k) for _, te in folds]


def select(f: np.ndarray, y: np.ndarray, groups: np.ndarray, k: int, n_spectral: int, candidates: list[str],
           embedding: bool, seed: int, events: Events | None = None, embedding_only: bool = False,
           progress: Callable[[int, int, str], None] | None = None) -> Selection:
    """Grouped (by parcel) cross-validation of every candidate, and the choice.

    With few labels the folds' scores are noise (two parcels a class: each fold tests on one parcel per class), and
    picking the best of eight candidates picks the luckiest. So a candidate replaces the robust default
    (:data:`ROBUST`: the soft vote of logistic regression and random forest, on the spectra alone unless
    ``embedding_only``) only when every class has :data:`MIN_CV_PARCELS` parcels or more **and** it beats the
    default by more than the standard error of their per-fold differences; otherwise the default is kept and
    :attr:`Selection.reason` says why. The embedding is kept by the same rule. ``progress(done, total, name)`` after
    each candidate."""
    from sklearn.model_selection import StratifiedGroupKFold

    parcel_class = {int(g): int(c) for g, c in zip(groups, y)}
    per_class = np.bincount(list(parcel_class.values()), minlength=k)
    n_min = int(per_class[per_class > 0].min())
    n_splits = int(min(3, max(2, n_min)))
    default = ROBUST if ROBUST in candidates else candidates[0]
    what = "the robust default" if len(candidates) > 1 else "the asked classifier"
    if len(parcel_class) < 4:
        return Selection(default, embedding, [], 0, None, f"only {len(parcel_class)} training parcels: no "
                         f"cross-validation, {what} ({default})")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = list(cv.split(f, y, groups))
    # the candidates are compared on at most CV_PIXELS training pixels per fold (spread over parcels): enough to
    # rank them, and the selection stays a fraction of the final fit's time
    rng = np.random.default_rng(seed)
    folds = [(tr if len(tr) <= CV_PIXELS else np.sort(rng.choice(tr, CV_PIXELS, replace=False)), te)
             for tr, te in folds]
    feature_sets = [(True, slice(None))] if embedding else [(False, slice(None))]
    if embedding and n_spectral > 0 and not embedding_only:
        feature_sets.append((False, slice(0, n_spectral)))
    table = []
    runs = [(name, with_emb, cols) for name in candidates for with_emb, cols in feature_sets]
    for i, (name, with_emb, cols) in enumerate(runs):
        if events is not None:
            events.check_cancel()
        if progress is not None:
            progress(i, len(runs), f"cross-validating {name}{' + embedding' if with_emb else ''}")
        pred = np.full(len(y), -1)
        for tr, te in folds:
            pred[te] = _predict(name, f[tr][:, cols], y[tr], f[te][:, cols], k, seed)
        score = miou_of(y, pred, k)
        table.append({"classifier": name, "embedding": with_emb, "cv_miou": round(score, 4),
                      "fold_miou": [round(v, 4) for v in _fold_scores(y, pred, folds, k)]})
        if events is not None:
            events.log(f"  {name}{' + embedding' if with_emb else ''}: cross-validated mIoU {score:.3f}")
    if progress is not None:
        progress(len(runs), len(runs), "fitting the kept classifier on every training pixel")
    robust_emb = embedding and embedding_only
    base = next(r for r in table if r["classifier"] == default and r["embedding"] == robust_emb)
    best = max(table, key=lambda r: r["cv_miou"])  # max keeps the first of equals: the simplest candidate
    if n_min < MIN_CV_PARCELS:
        keep, reason = base, (f"{n_min} training parcel(s) in the smallest class (fewer than {MIN_CV_PARCELS}): "
                              f"cross-validation cannot tell the candidates apart; {what} ({default})")
    elif best is base:
        keep, reason = base, "best"
    else:
        diff = np.array(best["fold_miou"]) - np.array(base["fold_miou"])
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
        if best["cv_miou"] - base["cv_miou"] > se:
            keep, reason = best, "best"
        else:
            keep, reason = base, (f"{best['classifier']}{' + embedding' if best['embedding'] else ''} led by "
                                  f"{best['cv_miou'] - base['cv_miou']:.3f} mIoU, within the folds' noise "
                                  f"(standard error {se:.3f}): {what} ({default})")
    if len(table) == 1:
        keep, reason = table[0], f"asked (--classifier {default})"
    for r in table:
        r["kept"] = r is keep
    if events is not None and reason != "best":
        events.log(f"  kept {reason}")
    return Selection(keep["classifier"], bool(keep["embedding"]), table, n_splits, float(keep["cv_miou"]), reason)


@dataclass
class PixelFit:
    model: PixelClassifier
    selection: Selection | None
    train_pixels: int
    train_parcels: int
    fit_s: float


def fit_pixel_classifier(store: ChipStore, inp: PixelInput, train_px: Pixels, k: int, *, classifier: str,
                         embedding: EmbeddingSpec | SeriesEmbeddingSpec | None,
                         encoder_state: dict[str, torch.Tensor] | None,
                         seed: int = 0, events: Events | None = None, embedding_only: bool = False,
                         smooth: float = 0.0, cross_validate: bool = False,
                         candidates: tuple[str, ...] = AUTO_CANDIDATES,
                         progress: Callable[[int, int, str], None] | None = None) -> PixelFit:
    """Features, optional selection (``classifier == "auto"``; with ``embedding_only`` the embedding is always
    kept and only the classifier is chosen; ``cross_validate``: a fixed classifier is cross-validated too, for its
    score; ``candidates`` of ``auto``, ``progress(done, total, what)`` as it goes), and the final fit on all
    ``train_px``; the map's probabilities smoothed
    by a Gaussian of ``smooth`` px (0: none; see :mod:`backend.pixel.model`)."""
    t0 = time.monotonic()
    torch.manual_seed(seed)
    features = PixelFeatures(inp, embedding=embedding)
    if features.embedding is not None:
        assert encoder_state is not None
        features.embedding.load_encoder(encoder_state)
        if isinstance(embedding, EmbeddingSpec) and embedding.dim:
            fit_projection(features, store, inp, seed)
    f = compute_features(features, store, inp, train_px)
    y = train_px.labels
    n_emb = features.embedding.spec.out_dim if features.embedding is not None else 0
    selection = None
    name = classifier
    if classifier == "auto" or cross_validate:
        if events is not None:
            events.log(("choosing the classifier by " if classifier == "auto" else "scoring by ")
                       + f"{len(np.unique(train_px.parcels))}-parcel grouped cross-validation:")
        selection = select(f, y, train_px.parcels, k, f.shape[1] - n_emb,
                           list(candidates) if classifier == "auto" else [classifier],
                           features.embedding is not None, seed, events,
                           embedding_only or classifier != "auto",  # a fixed classifier: scored as asked
                           progress=progress)
        name = selection.classifier
        if features.embedding is not None and not selection.with_embedding:
            features = PixelFeatures(inp, embedding=None)  # the embedding did not help on held-out parcels
            f = f[:, :f.shape[1] - n_emb]
    z, mean, std = _standardise(f)
    head = CLASSIFIERS[name].fit(z.astype(np.float32), y, k, seed)
    model = PixelClassifier(features, name, head, k, smooth=smooth)
    model.scaler.set(torch.from_numpy(mean).float(), torch.from_numpy(std).float())
    return PixelFit(model.eval(), selection, len(train_px), int(len(np.unique(train_px.parcels))),
                    time.monotonic() - t0)


@torch.no_grad()
def score_pixels(model: PixelClassifier, store: ChipStore, inp: PixelInput, px: Pixels, k: int,
                 class_names: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Confusion matrix and scores of ``model`` on the pixels ``px``."""
    model.eval()
    if model.pointwise:
        pred = model.classify(torch.from_numpy(compute_features(model.features, store, inp, px))).argmax(1)
    else:  # the map's pixels depend on their neighbourhood (an embedding, smoothing): the model on windows
        pred = torch.from_numpy(windowed(model, k, store, inp, px, not model.features.pointwise)).argmax(1)
    cm = confusion(torch.from_numpy(px.labels), pred, k).numpy()
    return cm, scores(cm, class_names)


__all__ = ["AUTO_CANDIDATES", "PixelFit", "embedding_spec", "fit_pixel_classifier", "labelled_pixels",
           "pixel_input", "sample_by_parcel", "score_pixels"]
