"""Every command's options, declared once: name, type, choices, default, range, help, and which are paths read
(``role="input"``) or written (``role="output"``); and the choice lists (their one home: the command modules read
them through :mod:`backend.options`).

Long because: the declarations themselves, one entry per option of eleven commands, with the groups they share.

Plain data (:class:`Option` dataclasses in :data:`COMMANDS`), light imports only (the standard library and
:mod:`backend.errors`): :mod:`backend.options` builds argparse and the JSON spec from it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from backend.errors import EoSslError

# -- choice lists (their one home; the command modules import them) ---------------------------------------------------
METHODS = ("rs-byol", "byol", "moco-v2", "simsiam", "barlow-twins", "swav", "dense-moco", "ts-byol", "ts-barlow")
VARIANTS = ("single", "three", "s2-only", "rgb-s1s2")
TASKS = ("classification", "segmentation")
SEG_ARCHS = ("unet", "deeplabv3plus", "deeplabv3")
HEADS = ("linear", "mlp")
PROTOCOLS = ("compare", "linear", "knn", "finetune")
#: the paths ``evaluate --protocol compare`` runs
COMPARE_PATHS = ("classic", "pixel", "unet")
#: the pixel classifiers (backend.pixel.classifiers.CLASSIFIERS), and ``auto``
CLASSIFIERS = ("auto", "linear", "gbm", "rf", "mlp", "vote")
EMBED_DTYPES = ("float32", "int16", "uint8")
SPLITS = ("by-parcel", "by-block")
#: the names of :data:`backend.interop.presets.PRESETS` (``tests/test_import_rules.py`` checks they are the same)
NORMALISATION_PRESETS = ("ssl4eo-s12", "ssl4eo-s12-rgb", "ssl4eo-s12-stats", "ssl4eo-s12-s1")
#: the usual ``--precision`` values (front ends offer them; the CLI passes any other to Lightning)
PRECISIONS = ("auto", "32", "16-mixed", "bf16-mixed")
#: the coarsest grid a command accepts, in metres (a grid of kilometre pixels is not Sentinel analysis any more)
MAX_RESOLUTION_M = 1000.0
#: Tiles per batch of predict and embed when --batch-size is not given, by device type (the GUI shows them too).
INFERENCE_BATCH_SIZE = {"cpu": 4, "cuda": 32}
_INFERENCE_BATCH_HELP = (f"tiles per batch (default {INFERENCE_BATCH_SIZE['cpu']} on the CPU, "
                         f"{INFERENCE_BATCH_SIZE['cuda']} on a GPU)")


@dataclass(frozen=True)
class Option:
    """One command-line option.

    ``type``: ``str``, ``int``, ``float`` or ``flag`` (on when given). ``minimum``/``maximum``: the range (inclusive,
    or exclusive where ``*_open``); floats must also be finite. ``nargs``/``action``: argparse's, for lists
    (``"+"``; ``"append"``/``"extend"``). ``role``: ``input`` for a path read, ``output`` for a path written (the
    CLI refuses an output that is, holds or lies inside an input). ``code``: the error code of a bad value.
    """

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    minimum_open: bool = False
    maximum_open: bool = False
    required: bool = False
    nargs: str | None = None
    action: str | None = None
    metavar: str | None = None
    group: str | None = None
    role: str | None = None
    code: str = "bad_argument"
    #: other spellings of the option (e.g. ``--normalization`` for ``--normalisation``)
    aliases: tuple[str, ...] = ()
    #: for a ``str`` option without ``choices``: the usual values a front end offers (the CLI accepts others)
    values: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")

    @property
    def positional(self) -> bool:
        return not self.name.startswith("-")

    def range_text(self) -> str:
        lo = "" if self.minimum is None else f"{'(' if self.minimum_open else '['}{self.minimum:g}"
        hi = "" if self.maximum is None else f"{self.maximum:g}{')' if self.maximum_open else ']'}"
        if lo and hi:
            return f"in {lo}, {hi}"
        if lo:
            return f"{'above' if self.minimum_open else 'at least'} {self.minimum:g}"
        return f"{'below' if self.maximum_open else 'at most'} {self.maximum:g}" if hi else ""

    def check(self, value: Any) -> None:
        """Raise ``EoSslError(self.code)`` when ``value`` (one value of the option) is out of range."""
        if value is None or self.type not in ("int", "float"):
            return
        bad = self.type == "float" and not math.isfinite(value)
        if self.minimum is not None:
            bad |= value <= self.minimum if self.minimum_open else value < self.minimum
        if self.maximum is not None:
            bad |= value >= self.maximum if self.maximum_open else value > self.maximum
        if bad:
            what = "a finite number" if self.type == "float" else "a whole number"
            default = f" (default {self.default})" if self.default is not None else ""
            raise EoSslError(self.code, f"{self.name} {value} is out of range: it must be {what} "
                             f"{self.range_text()}.", f"Give {self.name} {what} {self.range_text()}{default}.")


def _opt(name: str, type: str = "str", **kw: Any) -> Option:  # noqa: A002 - argparse's word
    return Option(name, type, **kw)


# -- shared groups ----------------------------------------------------------------------------------------------------
INPUTS = [
    _opt("--s2", nargs="+", metavar="PATH", group="inputs", role="input",
         help="Sentinel-2 files or folders (multi-band, one file per band as *_B02.jp2, or dated time series)"),
    _opt("--s2-bands", metavar="B02,B03,...", group="inputs",
         help="band names of multi-band S2 files, in file order (when the files do not name their bands)"),
    _opt("--s1", nargs="+", metavar="PATH", group="inputs", role="input",
         help="Sentinel-1 files or folders (VV/VH two-band files or *_VV.tif/*_VH.tif); dB or linear power "
              "(converted to dB)"),
    _opt("--s1-bands", metavar="VV,VH", group="inputs", help="polarisations of two-band S1 files, in file order"),
    _opt("--aoi", metavar="VECTOR", group="inputs", role="input",
         help="area of interest: polygons of any OGR vector file, any CRS"),
    _opt("--aoi-layer", group="inputs", help="layer of --aoi (default: the first)"),
    _opt("--bbox", metavar="MINX,MINY,MAXX,MAXY", group="inputs",
         help="area of interest as a box (instead of --aoi)"),
    _opt("--bbox-crs", default="EPSG:4326", group="inputs", help="CRS of --bbox (default EPSG:4326)"),
    _opt("--poi", metavar="START/END", group="inputs", help="period of interest, e.g. 2017-01-01/2017-12-31"),
    _opt("--crs", group="inputs", help="CRS of the analysis grid (default: the S2 CRS, or the UTM zone of the AOI)"),
    _opt("--resolution", "float", default=10.0, minimum=0, minimum_open=True, maximum=MAX_RESOLUTION_M,
         group="inputs", code="bad_resolution", help="grid resolution in metres (default 10)"),
]

#: feature rasters (embeddings) as a third input block, beside or instead of S2/S1 (prepare, predict, similar)
FEATURE_PRESETS = ("auto", "alphaearth", "tessera", "scaled")
FEATURE_INPUTS = [
    _opt("--features", nargs="+", metavar="RASTER", group="inputs", role="input",
         help="per-pixel feature rasters (an embedding: AlphaEarth, TESSERA, eo-ssl embed, Clay, any multi-band "
              "raster), files or folders, tiles of one product; reprojected onto the grid as S1; alone (the grid is "
              "then theirs) or beside --s2/--s1"),
    _opt("--features-preset", choices=FEATURE_PRESETS, default="auto", group="inputs",
         help="how the feature rasters are decoded: auto (default: 64 int8 bands = alphaearth, 128 int8 bands = "
              "tessera, else scaled), alphaearth (sign(v)(|v|/127.5)^2, nodata -128, bands A00..A63), tessera "
              "(int8 x the per-pixel scales of <name>_scales.tif), scaled (GDAL scale/offset and nodata)"),
]

TRAINER = [
    _opt("--epochs", "int", minimum=1, group="training", help="number of epochs (default: the command's)"),
    _opt("--max-steps", "int", minimum=1, group="training",
         help="stop after this many optimiser steps (overrides --epochs when reached first)"),
    _opt("--batch-size", "int", minimum=1, group="training", help="samples per step and device"),
    _opt("--devices", default="auto", group="training",
         help="auto (one GPU if there is one, else the CPU), cpu, cpu:N (N CPU processes), N (N GPUs; N CPU "
              "processes when there is no GPU), or GPU ids like 0,1"),
    _opt("--num-nodes", "int", default=1, minimum=1, group="training", help="machines for multi-node DDP"),
    _opt("--strategy", default="auto", group="training",
         help="auto (ddp for several devices), ddp, ddp_spawn, ddp_find_unused_parameters_true, fsdp..."),
    _opt("--precision", default="auto", values=PRECISIONS, group="training",
         help="auto (bf16-mixed or 16-mixed on CUDA, 32 on CPU), 32, 16-mixed, bf16-mixed"),
    _opt("--num-workers", "int", minimum=0, group="training", help="DataLoader worker processes (default: auto)"),
    _opt("--checkpoint-every", "int", default=200, minimum=0, group="training",
         help="save a resumable checkpoint every N steps (0: only when stopped or finished)"),
    _opt("--resume", "flag", group="training", help="continue the run in --out from its last checkpoint"),
    _opt("--seed", "int", default=0, minimum=0, group="training", help="random seed"),
    _opt("--threads", "int", minimum=1, group="training",
         help="torch CPU threads (default: torch's, one per core; on a machine shared with other work, fewer "
              "threads can be much faster)"),
]


def _fraction(name: str, default: float, group: str | None, help: str = "", *, zero: bool = True,  # noqa: A002
              one: bool = False, code: str = "bad_argument") -> Option:
    return _opt(name, "float", default=default, minimum=0, minimum_open=not zero, maximum=1, maximum_open=not one,
                group=group, help=help, code=code)


# -- the commands -----------------------------------------------------------------------------------------------------
PREPARE = [
    *INPUTS,
    *FEATURE_INPUTS,
    _opt("--parcels", metavar="VECTOR", group="labels", role="input",
         help="labelled parcels (polygons with a class field)"),
    _opt("--parcels-layer", group="labels", help="layer of --parcels (default: the first)"),
    _opt("--class-field", group="labels", help="attribute of --parcels holding the class"),
    _opt("--split", choices=SPLITS, default="by-parcel", group="labels",
         help="train/val/test split by parcel (default) or by spatial block; never by pixel"),
    _opt("--block-size", "float", default=1280.0, minimum=0, minimum_open=True, group="labels",
         help="block size in metres for --split by-block"),
    _fraction("--val-fraction", 0.15, "labels", "share of the parcels for validation (default 0.15)"),
    _fraction("--test-fraction", 0.15, "labels", "share of the parcels for testing (default 0.15)"),
    _opt("--seed", "int", default=0, minimum=0, group="labels", help="random seed of the split"),
    _opt("--chips", metavar="DIR", group="chip folders", role="input",
         help="a EuroSAT-style folder DIR/<Class>/*.tif instead of --s2"),
    _opt("--chip-bands", metavar="B01,...", group="chip folders",
         help="band order of the chips (default: the 13-band EuroSAT-MS file order B01..B12,B8A when the files do "
              "not name their bands)"),
    _opt("--out", required=True, metavar="DIR", group="output", role="output", help="chip store folder to write"),
    _opt("--overwrite", "flag", group="output", help="replace --out if it exists (only a chip store eo-ssl wrote)"),
    _opt("--window", "int", default=0, minimum=0, group="output",
         help="processing window in pixels (default: from memory budget)"),
]

PRETRAIN = [
    _opt("--data", nargs="+", required=True, metavar="STORE", role="input",
         help="chip store(s) written by `eo-ssl prepare` (cube or chips); several are concatenated"),
    _opt("--method", required=True, choices=METHODS, help="pre-training method"),
    _opt("--variant", choices=("auto", *VARIANTS), default="auto",
         help="rs-byol views: auto (default: single when every store has Sentinel-1, else s2-only), single (S2 band "
              "vs S1 polarisation), three, s2-only, rgb-s1s2"),
    _opt("--out", required=True, role="output", help="model package folder to write"),
    _opt("--overwrite", "flag", help="replace an existing package / checkpoints in --out (default: refuse)"),
    _opt("--encoder", group="model and data", help="timm encoder (default: the method's, resnet18 for every method)"),
    _opt("--init", metavar="MODEL_DIR", group="model and data", role="input",
         help="start from the encoder of an eo-ssl model package (safetensors only) instead of random"),
    _opt("--crop", "int", default=64, minimum=16, group="model and data",
         help="size of the views in pixels (a ResNet needs at least 16)"),
    _opt("--sensors", default="s2", choices=("s2", "s2+s1"), group="model and data",
         help="bands stacked as the input of byol/moco-v2/simsiam/barlow-twins/swav (rs-byol, ts-byol, ts-barlow: "
              "ignored)"),
    _opt("--bands", group="model and data",
         help="Sentinel-2 bands to use, comma-separated (default: all shared); ts-byol/ts-barlow: S2 and S1 names "
              "(e.g. B04,B08,B11,VV,VH; default: every band of the store)"),
    _opt("--epoch-length", "int", minimum=1, group="model and data",
         help="samples per epoch (default: all chips of chip stores, 512 random crops per cube store; ts-byol/"
              "ts-barlow: every observed pixel, or a fixed seeded sample of that many)"),
    _opt("--lr", "float", minimum=0, minimum_open=True, group="model and data",
         help="learning rate (default: the method's)"),
    _opt("--weight-decay", "float", minimum=0, group="model and data", help="weight decay (default: the method's)"),
    _opt("--ema", "float", minimum=0, maximum=1, group="model and data",
         help="momentum/EMA decay of the teacher (rs-byol 0.9, byol/moco-v2 0.99 -> 1)"),
    _opt("--set", action="append", default=[], metavar="KEY=VALUE", group="model and data",
         help="override any method option (e.g. queue_size=4096, prototypes=60, proj_hidden=256; ts-byol/ts-barlow: "
              "dim=64, depth=3, period_drop=0.3, band_drop=0.2, cross_sensor=0.5, period=month, "
              "season=03-01/10-31); VALUE is read as JSON when it parses; an unknown KEY is refused with the list of "
              "the method's options"),
    *TRAINER,
]

#: the pixel classifiers' reading of a time series (finetune --arch pixel, evaluate --protocol compare)
SEASON = [
    _opt("--period", default="month", group="pixel classifier (--arch pixel)", values=("month", "10d", "dates"),
         help="a time series on a season calendar: the per-band median of the valid observations in each period, "
              "gaps filled along time: month (default), N days (e.g. 10d), or dates (every acquisition date of "
              "the store: the model then maps only those dates)"),
    _opt("--season", metavar="START/END", group="pixel classifier (--arch pixel)",
         help="the calendar's season, MM-DD/MM-DD (e.g. 03-01/10-31) or YYYY-MM-DD/YYYY-MM-DD (default: the "
              "store's POI, else the 12 months with the most acquisitions); a model of 2018-03..10 maps 2019-03..10"),
    _opt("--bands", metavar="B,B,...", group="pixel classifier (--arch pixel)",
         help="train on these bands only (S2 and S1 names, e.g. B05,B06,B07,B8A,B11,B12,VV,VH), so that the model "
              "maps products that lack the others (default: every band of the store)"),
]

FINETUNE = [
    _opt("--data", required=True, metavar="DIR", group="fine-tuning", role="input",
         help="chip store from `eo-ssl prepare` (a cube with --parcels for segmentation, or chips for "
              "classification)"),
    _opt("--task", choices=TASKS, group="fine-tuning",
         help="default: segmentation for a cube, classification for chips"),
    _opt("--init", metavar="MODEL_DIR|random|none|FILE.safetensors", group="fine-tuning", role="input",
         help="start from a model package's encoder, at random, or from encoder weights in a file (default random); "
              "--arch pixel: the encoder whose per-pixel embedding is added to the spectra (default none: spectra "
              "only)"),
    _opt("--encoder", group="fine-tuning",
         help="timm encoder for --init random or a weights file (default resnet18); a package names its own"),
    _opt("--arch", choices=(*SEG_ARCHS, "unet3d", "pixel"), default="unet", group="fine-tuning",
         help="segmentation decoder (default unet); unet3d: the per-pixel U-Net-3D of dense-moco with a 1x1 head "
              "(implied by a dense-moco --init); pixel: a per-pixel classifier on the spectra of every date "
              "(+ temporal statistics, + the --init encoder's embedding)"),
    _opt("--head", choices=HEADS, default="linear", group="fine-tuning",
         help="classification head (mlp: hidden 128, BatchNorm, ReLU, as RS-BYOL's evaluation)"),
    _opt("--classifier", choices=CLASSIFIERS, default="auto", group="pixel classifier (--arch pixel)",
         help="auto (default: the best of logistic regression, gradient boosting and random forest, with and "
              "without the embedding, by cross-validation grouped by parcel), linear, gbm, rf or mlp"),
    _opt("--max-pixels", "int", default=20000, minimum=100, group="pixel classifier (--arch pixel)",
         help="training pixels at most, spread evenly over the training parcels (default 20000)"),
    _opt("--embedding-dim", "int", default=32, minimum=0, group="pixel classifier (--arch pixel)",
         help="principal components of the encoder's embedding kept (default 32; 0: all)"),
    _opt("--smooth", "float", default=1.0, minimum=0, maximum=8, group="pixel classifier (--arch pixel)",
         help="Gaussian (sigma in pixels) over the map's class probabilities: removes the isolated misclassified "
              "pixels of a per-pixel map (default 1, about a 3 x 3 window; 0: none)"),
    *SEASON,
    _opt("--quick", "flag", group="pixel classifier (--arch pixel)",
         help="a first map in seconds: auto chooses between logistic regression and the vote only, on at most 3000 "
              "training pixels"),
    _opt("--freeze-encoder", "flag", group="fine-tuning",
         help="train the decoder/head only (the encoder's weights and BatchNorm statistics stay fixed)"),
    _opt("--frozen-fraction", "float", minimum=0, maximum=1, group="fine-tuning",
         help="train the decoder/head only for this share of the steps, then the whole network (linear probe, "
              "then fine-tune; default 0.3 from a pre-trained package, 0 from random)"),
    _opt("--no-class-balance", "flag", group="fine-tuning",
         help="segmentation: draw training crops uniformly over labelled pixels (default: each class equally "
              "often, so that rare classes are learnt)"),
    _opt("--keep-last", "flag", group="fine-tuning",
         help="keep the last epoch's weights (default: the epoch with the best validation score)"),
    _fraction("--label-fraction", 1.0, "fine-tuning", zero=False, one=True,
              help="use this fraction of the training labels, drawn by parcel (segmentation) or by chip "
                   "(classification), stratified by class and seeded by --seed (default 1)"),
    _opt("--date", metavar="YYYY-MM-DD", group="fine-tuning",
         help="the Sentinel-2 date a single-date model reads from a multi-date cube (default: the date with the "
              "most valid pixels)"),
    _opt("--crop", "int", default=128, minimum=32, group="fine-tuning",
         help="segmentation training crop in pixels (multiple of 32)"),
    _opt("--samples-per-epoch", "int", default=1024, minimum=1, group="fine-tuning",
         help="segmentation crops per epoch"),
    _opt("--lr", "float", default=1e-3, minimum=0, minimum_open=True, group="fine-tuning",
         help="AdamW learning rate (warm-up + cosine)"),
    _opt("--encoder-lr", "float", minimum=0, group="fine-tuning",
         help="learning rate of the encoder (default: --lr)"),
    _opt("--weight-decay", "float", default=1e-4, minimum=0, group="fine-tuning", help="AdamW weight decay"),
    _opt("--out", required=True, metavar="MODEL_DIR", group="output", role="output",
         help="model package folder to write"),
    _opt("--overwrite", "flag", group="output", help="replace a finished package in --out"),
    *TRAINER,
]

EVALUATE = [
    _opt("--init", nargs="+", action="extend", metavar="MODEL_DIR|random", group="evaluation",
         role="input", help="model packages to evaluate, and/or 'random' (the same encoder at random "
                            "initialisation); repeat or list several (compare: 'random' is always added)"),
    _opt("--data", required=True, metavar="DIR", group="evaluation", role="input",
         help="labelled chip store (chips, or a cube with parcels)"),
    _opt("--task", choices=TASKS, group="evaluation",
         help="default: classification for chips, segmentation for a cube"),
    _opt("--protocol", choices=PROTOCOLS, default="compare", group="evaluation",
         help="compare (default): the classic per-pixel classifiers, the pixel classifier + embedding and the "
              "U-Net from each init, on held-out parcels; linear probe, kNN or fine-tuning: one protocol per init"),
    _opt("--label-fractions", group="evaluation",
         help="comma-separated fractions of the training labels (by parcel or by chip, stratified, seeded, nested; "
              "default 1,0.5,0.25 for compare, 1,0.5,0.1,0.01 otherwise)"),
    _opt("--parcels-per-class", metavar="K,K,...", group="evaluation",
         help="compare: budgets of K training parcels (chips) per class instead of fractions, e.g. 2,5,10"),
    _opt("--seeds", metavar="S,S,...", group="evaluation",
         help="compare: seeds (each draws its own parcels and initialisations; mean and sd reported; default "
              "--seed)"),
    _opt("--paths", default=",".join(COMPARE_PATHS), group="evaluation",
         help="compare: the paths to run (default classic,pixel,unet)"),
    _opt("--score-split", choices=("val", "test"), group="evaluation",
         help="compare: the held-out split scored (default: test when the store has one, else val)"),
    _opt("--test-data", metavar="STORE", group="evaluation", role="input",
         help="compare: score on every labelled pixel of this independent store (same sensors, bands and number of "
              "dates) instead of a split of --data"),
    _opt("--max-train-pixels", "int", default=20000, minimum=100, group="evaluation",
         help="compare: training pixels of the pixel classifiers at most (default 20000)"),
    _opt("--max-score-pixels", "int", default=200000, minimum=100, group="evaluation",
         help="compare: held-out pixels scored for the pixel classifiers at most (default 200000)"),
    _opt("--embedding-dim", "int", default=32, minimum=0, group="evaluation",
         help="compare: principal components of each encoder's embedding (default 32; 0: all)"),
    _opt("--smooth", "float", default=1.0, minimum=0, maximum=8, group="evaluation",
         help="compare: the pixel classifier paths' Gaussian over the class probabilities (sigma in pixels, as "
              "finetune --smooth; default 1; 0: none); the classic classifiers are never smoothed"),
    *SEASON,
    _opt("--probe-head", choices=HEADS, default="linear", group="evaluation",
         help="chips, linear protocol: the probe (mlp: hidden 128, BatchNorm, ReLU, as RS-BYOL)"),
    _opt("--probe-epochs", "int", default=100, minimum=1, group="evaluation",
         help="epochs of the probe on frozen chip features"),
    _opt("--k", "int", default=20, minimum=1, group="evaluation",
         help="neighbours of the kNN vote (fewer when there are fewer)"),
    _opt("--encoder", group="evaluation", help="encoder of 'random' when no package is given (default resnet18)"),
    _opt("--arch", choices=SEG_ARCHS, default="unet", group="evaluation",
         help="cube, finetune protocol: the decoder (the linear protocol always uses DeepLabV3)"),
    _opt("--date", metavar="YYYY-MM-DD", group="evaluation", help="the Sentinel-2 date read from a multi-date cube"),
    _opt("--crop", "int", default=128, minimum=32, group="evaluation", help="cube: training crop in pixels"),
    _opt("--samples-per-epoch", "int", default=512, minimum=1, group="evaluation",
         help="cube: training crops per epoch"),
    _opt("--lr", "float", default=1e-3, minimum=0, minimum_open=True, group="evaluation",
         help="learning rate of the probes and fine-tunes"),
    _opt("--max-pixels", "int", default=20000, minimum=1, group="evaluation",
         help="cube kNN / t-SNE: pixels sampled per split"),
    _opt("--tsne-samples", "int", default=1000, minimum=1, group="evaluation",
         help="validation items in the t-SNE plot"),
    _opt("--out", required=True, metavar="REPORT_DIR", group="evaluation", role="output",
         help="report folder to write (an existing report of eo-ssl is replaced)"),
    *TRAINER,
]

PREDICT = [
    _opt("--model", required=True, metavar="MODEL_DIR", role="input", help="model package from `eo-ssl finetune`"),
    *(dataclasses.replace(o, default=None, help="grid resolution in metres (default: the model's)")
      if o.name == "--resolution" else o for o in INPUTS),
    *FEATURE_INPUTS,
    _opt("--scenes", nargs="+", metavar="SCENE", group="many scenes", role="input",
         help="map many scenes, one map each (instead of --s2): files or folders as --s2 takes them, or text files "
              "(.txt) listing them one per line; the other input options apply to every scene"),
    _opt("--out-dir", metavar="DIR", group="many scenes", role="output",
         help="with --scenes: the folder of the maps (DIR/NAME.tif per scene, DIR/mosaic.vrt over them); a scene "
              "this job already mapped there is not redone"),
    _opt("--confidence-maps", "flag", group="many scenes",
         help="with --scenes: also write DIR/NAME_confidence.tif per scene"),
    _opt("--date", metavar="YYYY-MM-DD", group="inference",
         help="the Sentinel-2 date to read (default: the date with the most valid pixels in the AOI)"),
    _opt("--tile", "int", minimum=16, maximum=8192, group="inference",
         help="tile size in pixels (default 256; a classification model: its chip size); segmentation: a multiple "
              "of the encoder's stride (32), of 2^depth for a U-Net-3D"),
    _fraction("--overlap", 0.25, "inference", "overlap between tiles, fraction of --tile (default 0.25)"),
    _opt("--batch-size", "int", minimum=1, group="inference", help=_INFERENCE_BATCH_HELP),
    _opt("--devices", default="auto", group="inference",
         help="auto (a GPU if there is one), cpu, cuda or cuda:N; with --scenes also cpu:N (N CPU processes), N (N "
              "GPUs, or N CPU processes without one) or GPU ids like 0,1: one process per device"),
    _opt("--num-nodes", "int", default=1, minimum=1, group="inference",
         help="with --scenes: machines (torchrun on each, --devices per machine)"),
    _opt("--out", metavar="MAP.tif", group="output", role="output",
         help="land-cover map (GeoTIFF) to write (an existing map of eo-ssl is replaced); required without --scenes"),
    _opt("--confidence", metavar="CONF.tif", group="output", role="output",
         help="also write the highest class probability (0..1)"),
]

EMBED = [
    _opt("--model", required=True, metavar="MODEL_DIR", role="input",
         help="model package whose encoder embeds the pixels (eo-ssl pretrain / import-weights / finetune; a timm "
              "CNN encoder)"),
    *(dataclasses.replace(o, default=None, help="grid resolution in metres (default: the model's)")
      if o.name == "--resolution" else o for o in INPUTS),
    _opt("--dim", "int", default=16, minimum=0, group="embedding",
         help="principal components kept (default 16; 0: the whole pyramid, e.g. 960 bands for a ResNet-18)"),
    _opt("--levels", default="0,1,2,3", group="embedding",
         help="encoder pyramid levels (timm out_indices; default 0,1,2,3: strides 2, 4, 8, 16)"),
    _opt("--dtype", choices=EMBED_DTYPES, default="float32", group="embedding",
         help="float32 (default), or int16 / uint8 scaled per band (GDAL scale/offset)"),
    _opt("--date", metavar="YYYY-MM-DD", group="embedding",
         help="embed this Sentinel-2 date (default: one date as is; several: their composite, the per-band median "
              "of valid observations)"),
    _opt("--tile", "int", default=256, minimum=32, maximum=8192, group="embedding",
         help="tile size in pixels, a multiple of 32 (default 256)"),
    _fraction("--overlap", 0.25, "embedding", "overlap between tiles, fraction of --tile (default 0.25)"),
    _opt("--batch-size", "int", minimum=1, group="embedding", help=_INFERENCE_BATCH_HELP),
    _opt("--devices", default="auto", group="embedding", help="auto, cpu, cuda or cuda:N"),
    _opt("--sample-windows", "int", default=16, minimum=1, group="embedding",
         help="random windows the projection and the scaling are fitted on (default 16)"),
    _opt("--seed", "int", default=0, minimum=0, group="embedding", help="random seed of those windows"),
    _opt("--out", required=True, metavar="EMBEDDING.tif", group="output", role="output",
         help="multi-band GeoTIFF to write (an existing embedding of eo-ssl is replaced)"),
]

SIMILAR = [
    *(dataclasses.replace(o, required=True) if o.name == "--features" else o for o in FEATURE_INPUTS),
    *(dataclasses.replace(o, default=None, help="grid resolution in metres (default: the feature raster's)")
      if o.name == "--resolution" else o for o in INPUTS if o.name in ("--aoi", "--aoi-layer", "--bbox",
                                                                         "--bbox-crs", "--crs", "--resolution")),
    _opt("--examples", required=True, metavar="VECTOR", group="examples", role="input",
         help="example polygons or points (any OGR vector file, any CRS): the pixels they cover (a point: its pixel) "
              "give the mean embedding every pixel is compared with"),
    _opt("--examples-layer", group="examples", help="layer of --examples (default: the first)"),
    _opt("--class-field", group="examples",
         help="attribute of --examples holding a class: one band per class (default: one band, all examples)"),
    _opt("--out", required=True, metavar="SIM.tif", group="output", role="output",
         help="similarity raster to write (cosine similarity, -1..1, one band per class; an existing one of eo-ssl is "
              "replaced)"),
]

LABEL_PARCELS = [
    _opt("--map", required=True, metavar="MAP.tif", group="map", role="input",
         help="land-cover raster of integer class ids (e.g. from eo-ssl predict); nodata pixels are not counted"),
    _opt("--map-band", "int", default=1, minimum=1, group="map", code="bad_band",
         help="band of --map holding the class ids (default 1)"),
    _opt("--confidence", metavar="CONF.tif", group="map", role="input",
         help="confidence raster on the map's grid (0..1, e.g. the max softmax from eo-ssl predict --confidence)"),
    _opt("--confidence-scale", "float", minimum=0, minimum_open=True, group="map",
         help="multiply integer confidence values by this (default: the raster's own scale; needed for integer "
              "rasters without one)"),
    _opt("--classes", metavar="FILE", group="map", role="input",
         help="class names: model.json, dataset.json, .qml style or a JSON list (default: the map's metadata, its "
              ".qml/.aux.xml sidecars, a model.json beside it)"),
    _opt("--parcels", required=True, metavar="VECTOR", group="parcels", role="input",
         help="parcel polygons (any OGR format, any CRS)"),
    _opt("--parcels-layer", group="parcels", help="layer of --parcels (default: the first)"),
    _opt("--id-field", group="parcels",
         help="attribute identifying parcels in messages and exports (default: feature id)"),
    _opt("--min-pixels", "int", default=4, minimum=1, group="thresholds", code="bad_threshold",
         help="fewer valid pixels than this -> status too_small (default 4)"),
    _fraction("--min-fraction", 0.5, "thresholds", "majority class share below this -> status uncertain "
              "(default 0.5)", one=True, code="bad_threshold"),
    _fraction("--min-confidence", 0.5, "thresholds", "mean confidence below this -> status uncertain (with "
              "--confidence; default 0.5)", one=True, code="bad_threshold"),
    _opt("--out", required=True, metavar="LABELLED.gpkg", group="output", role="output",
         help="GeoPackage to write"),
    _opt("--overwrite", "flag", group="output", help="replace --out if it exists (only a GeoPackage eo-ssl wrote)"),
    _opt("--window", "int", default=1024, minimum=16, group="output", code="bad_window",
         help="processing window in pixels (default 1024)"),
]

EXPORT_DATASET = [
    *INPUTS,
    *FEATURE_INPUTS,
    _opt("--data", metavar="DIR", role="input",
         help="a chip store written by `eo-ssl prepare` (instead of --s2/--s1/--features)"),
    _opt("--parcels", required=True, metavar="VECTOR", group="parcels", role="input",
         help="labelled parcels, e.g. from label-parcels"),
    _opt("--parcels-layer", group="parcels", help="layer of --parcels (default: the first)"),
    _opt("--class-field", required=True, group="parcels", help="attribute holding the class (e.g. class_name)"),
    _opt("--id-field", group="parcels", help="attribute identifying parcels in the index (default: feature id)"),
    _opt("--status", group="parcels", help="keep parcels whose `status` field is one of these (comma-separated; "
                                          "default: labelled, when the layer has a status field)"),
    _opt("--chip", "int", default=64, minimum=8, maximum=4096, group="chips", code="bad_chip_size",
         help="chip size in pixels (default 64)"),
    _opt("--sensors", group="chips", help="sensors to export, e.g. s2, s2,s1 or s2,features (default: every sensor "
                                          "given)"),
    _opt("--dates", default="all", group="chips",
         help="all (every date, one channel per date and band), median (per-band median of the valid dates), or "
              "dates YYYY-MM-DD,... (each sensor's nearest acquisition)"),
    _opt("--max-chips-per-parcel", "int", default=0, minimum=0, group="chips",
         help="cap the tiles of a large parcel (0 = no cap)"),
    _opt("--split", choices=SPLITS, default="by-parcel", group="split",
         help="split by parcel (stratified by class, default) or by spatial block; never by pixel"),
    _opt("--block-size", "float", default=1280.0, minimum=0, minimum_open=True, group="split",
         help="block size in metres for --split by-block"),
    _fraction("--val-fraction", 0.15, "split", "share of the parcels for validation (default 0.15)"),
    _fraction("--test-fraction", 0.15, "split", "share of the parcels for testing (default 0.15)"),
    _opt("--seed", "int", default=0, minimum=0, group="split", help="random seed of the split"),
    _opt("--attribution", action="append", default=[], metavar="TEXT", group="output",
         help="licence / attribution of the labels or other sources (repeatable); written to dataset.json and "
              "ATTRIBUTION.md"),
    _opt("--out", required=True, metavar="DATASET_DIR", group="output", role="output",
         help="dataset folder to write"),
    _opt("--overwrite", "flag", group="output", help="replace --out if it exists (only a dataset eo-ssl wrote)"),
]

IMPORT_WEIGHTS = [
    _opt("file", metavar="FILE", role="input", required=True,
         help="the published weights: .pth/.pt state dict or checkpoint, or .safetensors"),
    _opt("--encoder", required=True, help="the architecture of the weights: a timm name (resnet18, resnet50, ...) or "
                                          "presto (Presto's published state dict, read into eo-ssl's own Presto; "
                                          "--bands, --normalisation and --prefix do not apply)"),
    _opt("--bands", help="the bands the encoder reads, in its order, comma-separated (default: the preset's; "
                         "SSL4EO-S12 multispectral: B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B10,B11,B12)"),
    _opt("--normalisation", aliases=("--normalization",), metavar="PRESET|FILE", role="input",
         help="the input normalisation the encoder was trained with: a preset "
              f"({', '.join(NORMALISATION_PRESETS)}) or a JSON file with mean, std (per band, in --bands order) and "
              "optional scale (what raw values are divided by first, e.g. 10000); default: the preset of a recognised "
              "torchgeo file"),
    _opt("--prefix", help="the key prefix of the encoder's tensors in the file (default: found automatically, e.g. "
                          "'state_dict.module.encoder_q.' for a MoCo checkpoint)"),
    _opt("--source", help="where the file comes from (URL or citation), recorded in the package"),
    _opt("--resolution", "float", default=10.0, minimum=0, minimum_open=True, maximum=MAX_RESOLUTION_M,
         code="bad_resolution", help="the pixel size in metres the encoder was trained at (default 10)"),
    _opt("--out", required=True, metavar="MODEL_DIR", role="output", help="model package folder to write"),
    _opt("--overwrite", "flag", help="replace an existing package in --out (only one eo-ssl wrote)"),
]

EXPORT_ONNX = [
    _opt("--model", required=True, metavar="MODEL_DIR", role="input",
         help="a classification or segmentation package (eo-ssl finetune)"),
    _opt("--out", required=True, metavar="MODEL.onnx", role="output",
         help="the ONNX file to write (an existing export of eo-ssl is replaced)"),
    _opt("--tile", "int", minimum=32, maximum=8192,
         help="tile size in pixels (default 256; a classification model: its chip size); segmentation: a multiple "
              "of the encoder's stride (32), of 2^depth for a U-Net-3D"),
    _fraction("--overlap", 0.25, None, "tile overlap suggested to Deepness, fraction of the tile (default 0.25, as "
              "eo-ssl predict)"),
    _opt("--opset", "int", default=17, minimum=7, help="ONNX opset (default 17)"),
]

#: command -> its options, in the order ``--help`` shows them.
COMMANDS: dict[str, list[Option]] = {
    "prepare": PREPARE, "pretrain": PRETRAIN, "finetune": FINETUNE, "evaluate": EVALUATE, "predict": PREDICT,
    "embed": EMBED, "similar": SIMILAR,
    "label-parcels": LABEL_PARCELS, "export-dataset": EXPORT_DATASET, "import-weights": IMPORT_WEIGHTS,
    "export-onnx": EXPORT_ONNX,
}
