"""``eo-ssl evaluate --protocol compare``: which path gives the best map with the user's labels, and what did
pre-training buy?
Long because: budgets, scoring and the cube and chip paths are one experiment sharing Budget, Scorer and Row.

For each label budget (a fraction of the training parcels, or K parcels per class) and seed, the same parcels train
every path, and every path is scored on the same held-out parcels (the test split when the store has one, else the
validation split; or all labelled pixels of an independent store, ``--test-data``):

- ``classic``: per-pixel classifiers on the spectra of every date (+ temporal statistics): logistic regression,
  gradient boosting and random forest (:mod:`backend.pixel`), what SCP and dzetsaka users get in QGIS today;
- ``pixel``: eo-ssl's pixel classifier as ``finetune --arch pixel`` makes it (classifier chosen by cross-validation
  grouped by parcel, class probabilities smoothed by ``--smooth``): on the spectra alone, and with each encoder's
  per-pixel embedding added (``pixel + embedding``);
- ``U-Net``: the U-Net from each encoder (and from random initialisation), with the few-label training of
  ``finetune`` (class-balanced crops, the best validation epoch, a frozen start for a pre-trained encoder).

Chip stores: band mean/std per chip with the same three classic classifiers, against a logistic-regression probe and
kNN on each encoder's pooled features.

The report opens with one sentence: the path to use, and what pre-training was worth in labels (the budget at which
the random-init U-Net reaches what the pre-trained one scores, interpolated on the curve).

Budgets, scoring, the cube paths and the chip paths are the one
experiment of ``evaluate --protocol compare``, sharing :class:`Budget`, :class:`Scorer` and :class:`Row`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend import options
from backend.data.chipstore import ChipStore
from backend.data.dates import COMPOSITE
from backend.data.labelled import CubeReader, CubeWindows, split_parcels
from backend.errors import EoSslError
from backend.events import Events
from backend.outputs import abort_on_failure
from backend.report.metrics import confusion, scores

CLASSIC = ("linear", "gbm", "rf")
CLASSIC_NAMES = {"linear": "logistic regression", "gbm": "gradient boosting", "rf": "random forest"}


# -- budgets ----------------------------------------------------------------------------------------------------
@dataclass
class Budget:
    value: float  # the fraction, or K parcels per class
    unit: str  # "fraction" | "per class"
    keep: np.ndarray | None  # parcel mask (None: every training parcel)
    parcels: int
    per_class: dict[str, int] = field(default_factory=dict)  # what it really holds: class name -> parcels (chips)

    @property
    def label(self) -> str:
        return f"{self.value:g}" if self.unit == "fraction" else f"{int(self.value)} per class"

    def short(self) -> dict[str, int]:
        """The classes with fewer training parcels than a K-per-class budget asks for (the store has no more)."""
        if self.unit != "per class":
            return {}
        return {name: n for name, n in self.per_class.items() if n < self.value}

    def describe(self) -> str:
        """What the budget really trains on: e.g. ``11 parcels (Cabbages 1, Maize 2, ...)``."""
        return f"{self.parcels} parcels ({', '.join(f'{name} {n}' for name, n in self.per_class.items())})"


def warn_budget(budget: Budget, warn: Callable[[str, str], Any], unit: str = "parcel") -> None:
    """``budget_short``: a K-per-class budget that some classes cannot fill, said with the real budget per class."""
    short = budget.short()
    if short:
        asked = int(budget.value) * len(budget.per_class)
        warn("budget_short", f"--parcels-per-class {int(budget.value)}: the training split holds fewer {unit}s of "
             + ", ".join(f"{name} ({n})" for name, n in short.items())
             + f", so this budget trains on {budget.parcels} {unit}s, not {asked}: "
             + ", ".join(f"{name} {n}" for name, n in budget.per_class.items()) + ".")


def draw_per_class(cls: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Mask keeping ``k`` items of each class (all of a class that has fewer), seeded and nested in ``k``."""
    keep = np.zeros(len(cls), bool)
    rng = np.random.default_rng(seed)
    for c in np.unique(cls):
        idx = np.nonzero(cls == c)[0]
        keep[idx[rng.permutation(len(idx))][:k]] = True
    return keep


def budgets(ids: np.ndarray, cls: np.ndarray, n_total: int, fractions: list[float] | None,
            per_class: list[int] | None, seed: int, names: list[str] | None = None) -> list[Budget]:
    """The parcels each budget trains on (drawn by parcel, stratified, seeded, nested); ``names`` (class id ->
    name) fills each budget's real parcels per class."""
    from backend.data.labelled import draw_fraction

    out = []
    for value, unit in ([(float(k), "per class") for k in per_class or []]
                        or [(f, "fraction") for f in fractions or [1.0]]):
        if unit == "fraction" and value >= 1:
            mask = np.ones(len(ids), bool)
        elif unit == "fraction":
            mask = draw_fraction(cls, value, seed)
        else:
            mask = draw_per_class(cls, int(value), seed)
        keep = np.zeros(n_total, bool)
        keep[ids[mask]] = True
        counts = {name: int((cls[mask] == c).sum()) for c, name in enumerate(names or [])}
        out.append(Budget(value, unit, None if mask.all() else keep, int(mask.sum()), counts))
    return out


# -- scoring --------------------------------------------------------------------------------------------------
class Scorer:
    """The held-out pixels every path is scored on: a split of the training store, or an independent store."""

    def __init__(self, store: ChipStore, split: str, max_pixels: int, seed: int,
                 classes: list[dict[str, Any]] | None = None) -> None:
        self.store, self.split, self.max_pixels, self.seed = store, split, max_pixels, seed
        #: an independent store's class ids -> the training store's, matched by name (-1: a class the models do not
        #: know, left out of the score); None when the ids are the same
        self.remap: np.ndarray | None = None
        self.unmatched: list[str] = []
        #: the input whose valid pixels are scored (every feature set of a store with feature rasters is scored on
        #: the same pixels: those with an observation in any block); None: the model's own
        self.select: Any = None
        if classes is not None and store.kind == "cube":
            own = store.classes
            by_name = {str(c["name"]).casefold(): int(c["id"]) for c in classes}
            table = np.full(max([int(c["id"]) for c in own] + [0]) + 1, -1, np.int64)
            for c in own:
                table[int(c["id"])] = by_name.get(str(c["name"]).casefold(), -1)
            self.unmatched = [str(c["name"]) for c in own if str(c["name"]).casefold() not in by_name]
            if not (table >= 0).any():
                raise EoSslError("test_data_mismatch", f"{store.path} shares no class name with the training store "
                                 f"({', '.join(str(c['name']) for c in own)} vs "
                                 f"{', '.join(str(c['name']) for c in classes)}).",
                                 "Give a --test-data store whose parcels use the same class names.")
            if self.unmatched or any(table[int(c["id"])] != int(c["id"]) for c in own):
                self.remap = table

    def describe(self) -> str:
        what = "all labelled pixels" if self.split == "all" else f"the {self.split} split's parcels"
        if self.unmatched:
            what += f" (classes the models know; left out: {', '.join(self.unmatched)})"
        return f"{what} of {self.store.path}"

    def pixel_model(self, model: Any, k: int) -> np.ndarray:
        from backend.pixel.train import score_pixels

        inp = self.input_for(model.features.inp)
        px = self.pixels(self.input_for(self.select) if self.select is not None else inp)
        if len(px) == 0:
            raise EoSslError("no_samples", f"No labelled pixel to score on in {self.describe()}.",
                             "Prepare the store with a test or validation split.")
        cm, _ = score_pixels(model, self.store, inp, px, k, [str(i) for i in range(k)])
        return cm

    def pixels(self, inp: Any) -> Any:
        """The scored pixels (sampled over parcels), their labels in the training store's class ids."""
        from backend.pixel.data import labelled_pixels, sample_by_parcel

        px = labelled_pixels(self.store, inp, self.split)
        if self.remap is not None:
            lab = self.remap[px.labels]
            px = px.take(np.nonzero(lab >= 0)[0])
            px.labels = self.remap[px.labels]
        return sample_by_parcel(px, self.max_pixels, self.seed)

    def input_for(self, inp: Any) -> Any:
        """The training input layout on the scoring store: the same bands and dates when it holds them (a split of
        the training store, also with ``--date``), else its own dates matched by position (an independent store of
        another period has other dates, as many of them)."""
        from backend.pixel.data import pixel_input
        from backend.pixel.features import PixelInput, SensorBlock

        if inp.calendar is not None:  # a season calendar reads any store whose dates cover its periods
            return inp
        own = pixel_input(self.store, period="dates")
        blocks = []
        for b in inp.blocks:
            other = own.block(b.sensor)
            if other is not None and set(b.dates) <= set(other.dates) and set(b.bands) <= set(other.bands):
                blocks.append(b)  # the training store itself (or one holding its dates): the very same dates
                continue
            if other is None or len(other.dates) != len(b.dates) or any(x not in other.bands for x in b.bands):
                raise EoSslError("test_data_mismatch", f"{self.store.path} does not have the {b.sensor.upper()} "
                                 f"bands and {len(b.dates)} date(s) the models were trained on.",
                                 "Give a --test-data store prepared from the same sensors, bands and number of dates.")
            blocks.append(SensorBlock(b.sensor, b.bands, other.dates, b.mean, b.std))
        return PixelInput(blocks)

    @torch.no_grad()
    def network(self, net: torch.nn.Module, spec: Any, picks: Any, choice: Any, size: int, device: torch.device,
                k: int) -> np.ndarray:
        from backend.train.finetune import confusion_on

        if self.remap is not None:
            raise EoSslError("test_data_mismatch", f"{self.store.path} has other class ids than the training store: "
                             "the U-Net path scores only on a store of the same class table.",
                             "Leave unet out of --paths (--paths classic,pixel), or prepare both stores from "
                             "parcels of the same classes.")
        windows = CubeWindows(CubeReader(self.store, spec, picks, choice, self.split), size)
        loader = torch.utils.data.DataLoader(windows, batch_size=4, shuffle=False)
        return confusion_on(net, loader, device, k)


# -- one result ---------------------------------------------------------------------------------------------------
@dataclass
class Row:
    path: str
    kind: str  # classic | pixel | unet | probe | knn
    init: str | None  # the encoder's label (None: no encoder)
    budget: Budget
    seed: int
    cm: np.ndarray
    detail: dict[str, Any]
    seconds: float

    def to_dict(self, class_names: list[str]) -> dict[str, Any]:
        return {"init": self.path, "path": self.path, "kind": self.kind, "encoder": self.init,
                "fraction": self.budget.value, "budget": self.budget.label, "unit": self.budget.unit,
                "n_train": self.budget.parcels, "train_per_class": self.budget.per_class, "seed": self.seed,
                "metrics": scores(self.cm, class_names), "confusion": self.cm.tolist(), "detail": self.detail,
                "seconds": round(self.seconds, 1)}


def _timed(fn: Callable[[], tuple[np.ndarray, dict[str, Any]]]) -> tuple[np.ndarray, dict[str, Any], float]:
    t0 = time.monotonic()
    cm, detail = fn()
    return cm, detail, time.monotonic() - t0


# -- cubes ----------------------------------------------------------------------------------------------------------
def compare_cube(args: Any, events: Events, store: ChipStore, inits: list[Any], labels: list[str], specs: list[Any],
                 cfg: Any, device: torch.device, tmp: Path, scorer: Scorer, seeds: list[int]) -> list[Row]:
    """Every path at every budget and seed on a cube with parcels (see the module docstring)."""
    from backend.pixel.data import feature_sets, input_from_args, labelled_pixels, sample_by_parcel
    from backend.train import finetune as ft

    inp = input_from_args(store, args)
    # a store with feature rasters: the classic and pixel paths on the spectra, the features and both
    sets = [(label, input_from_args(store, args, sensors) if label else inp) for label, sensors in feature_sets(store)]
    if len(sets) > 1:
        scorer.select = inp
        events.log("feature sets: " + "; ".join(f"{label} ({', '.join(b.sensor for b in i.blocks)})"
                                               for label, i in sets))
    classes = ft.classes_of(store)
    k = len(classes)
    ids, cls, n_total = split_parcels(store, "train")
    if len(ids) == 0:
        raise EoSslError("no_samples", f"{store.path} has no training parcels.", "Prepare with --parcels.")
    rows: list[Row] = []
    encoders = [(init, label, spec) for init, label, spec in zip(inits, labels, specs)]
    names = [c["name"] for c in classes]
    for seed in seeds:
        for budget in budgets(ids, cls, n_total, args.fractions, args.per_class, seed, names):
            events.check_cancel()
            if seed == seeds[0]:  # K parcels per class are min(K, what the split holds) for every seed
                warn_budget(budget, events.warning)
            px = sample_by_parcel(labelled_pixels(store, inp, "train", budget.keep), args.max_train_pixels, seed)
            if len(px) == 0:
                continue
            events.log(f"budget {budget.label} (seed {seed}): {budget.describe()}, {len(px)} pixels")

            smoothed = f", smoothing {args.smooth:g} px" if args.smooth else ""
            for set_label, set_inp in sets:
                fit = PixelPath(store, set_inp, px, k, seed, scorer)
                what = set_label or "spectra"
                if "classic" in args.paths:
                    for name in CLASSIC:
                        cm, detail, sec = _timed(lambda n=name, f=fit: f.run(n))
                        _add(rows, events, Row(f"{CLASSIC_NAMES[name]} ({what})", "classic", None, budget, seed, cm,
                                               {**detail, "feature_set": what}, sec))
                if "pixel" in args.paths:
                    cm, detail, sec = _timed(lambda f=fit: f.run("auto", smooth=args.smooth))
                    _add(rows, events, Row(f"pixel classifier ({what}{smoothed})", "pixel-spectra", None, budget,
                                           seed, cm, {**detail, "feature_set": what}, sec))
            fit = PixelPath(store, sets[0][1], px, k, seed, scorer)  # encoders' embeddings: beside the spectra
            if "pixel" in args.paths:
                for init, label, _ in encoders:
                    emb, state = _embedding_of(init, sets[0][1], args.embedding_dim, store,
                                               [i for i, _, _ in encoders])
                    if emb is not None:
                        cm, detail, sec = _timed(lambda e=emb, st=state, f=fit: f.run("auto", e, st, args.smooth))
                        _add(rows, events, Row(f"pixel + embedding ({label}{smoothed})", "pixel", label, budget,
                                               seed, cm, detail, sec))
            if "unet" in args.paths:
                for init, label, (spec, picks) in encoders:
                    events.check_cancel()
                    cm, detail, sec = _timed(lambda i=init, sp=spec, pk=picks, b=budget, sd=seed: _unet(
                        args, events, store, i, sp, pk, b, cfg, device, tmp, scorer, sd, k, ft))
                    _add(rows, events, Row(f"U-Net ({label})", "unet", label, budget, seed, cm, detail, sec))
    return rows


def _add(rows: list[Row], events: Events, row: Row) -> None:
    rows.append(row)
    m = scores(row.cm)["miou"]
    events.log(f"  {row.path}: mIoU {m:.3f} ({row.seconds:.0f} s)" if m is not None else f"  {row.path}: –")


@dataclass
class PixelPath:
    """A pixel classifier fitted on one budget's pixels and scored."""

    store: ChipStore
    inp: Any
    px: Any
    k: int
    seed: int
    scorer: Scorer

    def run(self, classifier: str, emb: Any = None, state: Any = None, smooth: float = 0.0
            ) -> tuple[np.ndarray, dict[str, Any]]:
        from backend.pixel.train import fit_pixel_classifier

        fit = fit_pixel_classifier(self.store, self.inp, self.px, self.k, classifier=classifier, embedding=emb,
                                   encoder_state=state, seed=self.seed, embedding_only=emb is not None,
                                   smooth=smooth)
        detail = {"classifier": fit.model.classifier, "embedding_kept": fit.model.features.embedding is not None,
                  "smooth": smooth}
        return self.scorer.pixel_model(fit.model, self.k), detail


def _embedding_of(init: Any, inp: Any, dim: int, store: ChipStore, inits: list[Any]) -> tuple[Any, Any]:
    """(embedding spec, encoder weights) of an init for the pixel path; (None, None) when it has no encoder the
    pixel path reads. A random init of a pixel time-series family takes the architecture of the first package of
    that family among ``inits``."""
    from backend.pixel.train import init_embedding

    template = next((i.meta for i in inits if i.kind == "package" and i.encoder == init.encoder), None)
    return init_embedding(init, inp, dim, store, template=template)


def _unet(args: Any, events: Events, store: ChipStore, init: Any, spec: Any, picks: Any, budget: Budget, cfg: Any,
          device: torch.device, tmp: Path, scorer: Scorer, seed: int, k: int, ft: Any
          ) -> tuple[np.ndarray, dict[str, Any]]:
    import dataclasses

    # every few-label path reads the whole period: a multi-date store feeds the 2D U-Net its per-band median composite
    multi = any(len(store.dates(s)) > 1 for s in store.sensors)
    date = args.date or (COMPOSITE if multi else None)
    data = ft.build_task_data(store, "segmentation", spec, picks, seed=seed, crop=args.crop,
                              samples_per_epoch=args.samples_per_epoch, date=date, keep_parcels=budget.keep)
    net = ft.build_net("segmentation", init, spec, k, arch=args.arch)
    (tmp / ".runs").mkdir(exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(dir=tmp / ".runs"))
    frozen = ft.default_frozen_fraction(init, None)
    outcome = ft.train(data, net, dataclasses.replace(cfg, seed=seed), run_dir, events, lr=args.lr,
                       frozen_fraction=frozen, keep_best=scorer.split != "val",
                       stage=f"U-Net {budget.label}")
    cm = scorer.network(outcome.net, spec, picks, data.date, data.crop or 128, device, k)
    best = outcome.fit.extra.get("best")
    return cm, {"steps": outcome.fit.global_step, "kept_epoch": best, "frozen_fraction": frozen,
                "dates": data.date.rule if data.date else None}


# -- chips ----------------------------------------------------------------------------------------------------------
def band_statistics(store: ChipStore, idx: np.ndarray) -> np.ndarray:
    """Per chip: mean and standard deviation of every band (the classic chip features)."""
    chips = store.array("chips")
    out = []
    for i in range(0, len(idx), 256):
        x = np.asarray(chips[idx[i:i + 256]], np.float32)
        out.append(np.concatenate([x.mean((2, 3)), x.std((2, 3))], 1))
    return np.concatenate(out) if out else np.zeros((0, 2 * chips.shape[1]), np.float32)


def compare_chips(args: Any, events: Events, store: ChipStore, inits: list[Any], labels: list[str], specs: list[Any],
                  device: torch.device, seeds: list[int]) -> list[Row]:
    """Band statistics + classic classifiers against probes on each encoder's pooled features (chips)."""
    from backend.data.labelled import chip_split, draw_fraction
    from backend.train import finetune as ft
    from backend.train import probes

    classes = ft.classes_of(store)
    k = len(classes)
    y_all = np.asarray(store.array("chip_labels"), np.int64)
    train_idx, test_idx = chip_split(store, "train"), chip_split(store, scorer_split(store, args))
    if len(test_idx) == 0:
        raise EoSslError("no_validation", f"{store.path} has no held-out chips to score on.",
                         "Prepare the chips with a --val-fraction / --test-fraction above 0.")
    stats_tr, stats_te = band_statistics(store, train_idx), band_statistics(store, test_idx)
    feats = []
    for init, (spec, picks) in zip(inits, specs):
        base = ft.build_task_data(store, "classification", spec, picks, seed=0)
        net = ft.build_net("classification", init, spec, k)
        tr = probes.all_train_chips(base)
        from backend.data.labelled import Chips

        te = Chips(store, spec, tr.channel_index, test_idx)
        feats.append((probes.chip_features(net, tr, device)[0], probes.chip_features(net, te, device)[0]))
    y_tr, y_te = y_all[train_idx], y_all[test_idx]
    rows: list[Row] = []
    for seed in seeds:
        for value, unit in ([(float(c), "per class") for c in args.per_class or []]
                            or [(f, "fraction") for f in args.fractions or [1.0]]):
            keep = (np.ones(len(y_tr), bool) if unit == "fraction" and value >= 1 else
                    draw_fraction(y_tr, value, seed) if unit == "fraction" else draw_per_class(y_tr, int(value), seed))
            budget = Budget(value, unit, None, int(keep.sum()),
                            {c["name"]: int((y_tr[keep] == c["id"]).sum()) for c in classes})
            if seed == seeds[0]:
                warn_budget(budget, events.warning, "chip")

            def cm_of(pred: np.ndarray) -> np.ndarray:
                return confusion(torch.from_numpy(y_te), torch.from_numpy(pred), k).numpy()

            for name in CLASSIC:
                t0 = time.monotonic()
                cm = cm_of(_fit_predict(name, stats_tr[keep], y_tr[keep], stats_te, k, seed))
                _add(rows, events, Row(f"{CLASSIC_NAMES[name]} (band mean/std)", "classic", None, budget, seed, cm,
                                       {}, time.monotonic() - t0))
            for label, (f_tr, f_te) in zip(labels, feats):
                t0 = time.monotonic()
                _add(rows, events, Row(f"linear probe ({label})", "probe", label, budget, seed,
                                       cm_of(_fit_predict("linear", f_tr[keep], y_tr[keep], f_te, k, seed)), {},
                                       time.monotonic() - t0))
                t0 = time.monotonic()
                pred = probes.knn_predict(f_tr[keep], y_tr[keep], f_te, k, args.k)
                _add(rows, events, Row(f"kNN ({label})", "knn", label, budget, seed, cm_of(pred), {"k": args.k},
                                       time.monotonic() - t0))
    return rows


def _fit_predict(name: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A registry classifier on standardised features; the predicted classes of ``x_test``."""
    from backend.pixel.classifiers import CLASSIFIERS

    mean, std = x.mean(0), x.std(0) + 1e-6
    head = CLASSIFIERS[name].fit(((x - mean) / std).astype(np.float32), y, k, seed)
    with torch.no_grad():
        return head(torch.from_numpy(((x_test - mean) / std).astype(np.float32))).argmax(1).numpy()


def scorer_split(store: ChipStore, args: Any) -> str:
    """``--score-split``, or by default the test split when the store has one, else the validation split."""
    if getattr(args, "score_split", None):
        return str(args.score_split)
    if store.kind == "chips":
        split = np.asarray(store.array("chip_split"))
        return "test" if (split == 3).any() else "val"
    _, cls, _ = split_parcels(store, "test")
    return "test" if len(cls) else "val"


# -- the command --------------------------------------------------------------------------------------------------
def run_compare(args: Any, events: Events, t0: float, output: Any) -> dict[str, Any]:
    """``evaluate --protocol compare``: run the paths, write report.json / report.html / plots (see the module
    docstring) through ``output`` (the checked :class:`backend.outputs.Output` of ``--out``)."""
    import datetime as dt

    from backend import __version__
    from backend.report import plots
    from backend.report.summary import aggregate, summary_sentence
    from backend.train import finetune as ft
    from backend.train import probes, runner

    out = Path(args.out)
    if args.label_fractions and args.parcels_per_class:
        raise EoSslError("bad_argument", "--label-fractions and --parcels-per-class both given.", "Give one of them.")
    args.per_class = probes.parse_list(args.parcels_per_class, int, "--parcels-per-class")
    args.fractions = None if args.per_class else probes.parse_fractions(args.label_fractions or "1,0.5,0.25")
    args.paths = [p.strip() for p in str(args.paths).split(",") if p.strip()]
    unknown = [p for p in args.paths if p not in options.COMPARE_PATHS]
    if unknown or not args.paths:
        raise EoSslError("bad_argument", f"--paths {','.join(args.paths)}: unknown {', '.join(unknown) or 'none'}.",
                         f"Use some of: {', '.join(options.COMPARE_PATHS)}.")
    cfg = runner.TrainConfig.from_args(args, epochs=20, batch_size=16)
    seeds = probes.parse_list(args.seeds, int, "--seeds", minimum=0) or [cfg.seed]
    names = list(dict.fromkeys(str(i) for i in (args.init or []))) or ["random"]
    if "random" not in names:
        names.append("random")  # what pre-training is measured against
    store, task, inits, labels, specs, device = probes.load_contest(args, names, cfg, events.warning)
    tmp = output.start()
    with abort_on_failure(out, output.abort):
        if task == "classification":
            rows = compare_chips(args, events, store, inits, labels, specs, device, seeds)
            scored_on = f"the {scorer_split(store, args)} split's chips of {store.path}"
        else:
            if args.test_data:
                scorer = Scorer(ChipStore(args.test_data), "all", args.max_score_pixels, cfg.seed,
                                classes=ft.classes_of(store))
            else:
                scorer = Scorer(store, scorer_split(store, args), args.max_score_pixels, cfg.seed)
            scored_on = scorer.describe()
            rows = compare_cube(args, events, store, inits, labels, specs, cfg, device, tmp, scorer, seeds)
        classes = ft.classes_of(store)
        class_names = [c["name"] for c in classes]
        results = [r.to_dict(class_names) for r in rows]
        unit = "per class" if args.per_class else "fraction"
        summary = summary_sentence(results, unit, "miou" if task == "segmentation" else "f1_macro")
        if summary.get("not_scored"):
            events.warning("classes_not_scored", f"No held-out {'parcel' if task == 'segmentation' else 'chip'} of "
                           f"{', '.join(summary['not_scored'])} in {scored_on}: every score is over the other "
                           f"{len(class_names) - len(summary['not_scored'])} classes and says nothing about these.")
        events.log(summary["text"])
        agg = aggregate(results, "miou" if task == "segmentation" else "f1_macro")
        means = [{"init": path, "fraction": b, "metrics": {"miou": e["mean"]} if task == "segmentation" else
                  {"f1_macro": e["mean"]}} for (path, b), e in agg.items()]
        top = max(r["fraction"] for r in results)
        best_rows = [r for r in results if r["fraction"] == top and r["seed"] == seeds[0]
                     and r["path"] in {summary.get("best"), summary.get("best_classic")}]
        images = {
            "Label efficiency (mean over seeds)": plots.label_efficiency(
                means, tmp / "label_efficiency.png", metrics=("miou",) if task == "segmentation" else ("f1_macro",),
                title="held-out score per path", xlabel="parcels per class" if args.per_class else "label fraction"),
        }
        if best_rows:
            images["Confusion matrices (largest budget)"] = plots.confusion_matrices(
                [(r["path"], np.array(r["confusion"])) for r in best_rows], class_names, tmp / "confusion.png")
        report = {
            "format": "eo-ssl-report", "version": 1, "code_version": __version__,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "data": str(Path(args.data).resolve()), "task": task, "protocol": "compare",
            "protocol_description": "every path trained on the same parcels and scored on the same held-out ones",
            "summary": summary, "scored_on": scored_on, "test_data": args.test_data,
            "budgets": args.per_class or args.fractions, "budget_unit": unit, "seeds": seeds,
            "validation": scored_on, "fraction_unit": "by parcel" if task == "segmentation" else "by chip",
            "label_fractions": args.fractions, "seed": seeds[0],
            "training": {"epochs": cfg.epochs, "max_steps": cfg.max_steps, "batch_size": cfg.batch_size,
                         "lr": args.lr, "crop": args.crop, "max_train_pixels": args.max_train_pixels},
            "classes": classes,
            "inits": [{"label": lb, **i.provenance(), "method": (i.meta or {}).get("method")}
                      for lb, i in zip(labels, inits)],
            "aggregate": [{"path": p, "budget": e["budget"], "value": b, "kind": e["kind"], "encoder": e["encoder"],
                           "n_train": e["n_train"], "mean": e["mean"], "sd": e["sd"], "values": e["values"]}
                          for (p, b), e in agg.items()],
            "results": results,
            "plots": {"label_efficiency": "label_efficiency.png", "confusion": "confusion.png"},
            "elapsed_s": round(time.monotonic() - t0, 1),
        }
        probes.write_report(tmp, report, images)
        events.check_cancel()  # the last safe point: a signal after it finds the report complete
        output.commit()
    for name, kind in (("report.html", "report"), ("report.json", "report_json"), ("label_efficiency.png", "plot")):
        events.artifact(kind, str(out / name))
    return {"out": str(out), "report": str(out / "report.html"), "protocol": "compare", "task": task,
            "summary": summary["text"], "best": summary.get("best")}
