"""2 Pre-train, 3 Fine-tune, 4 Evaluate.

One module for the three training algorithms because they share the training parameters (device, precision,
steps, resume) and their mapping onto the CLI options; most of its length is their parameter declarations, which
come from the backend's option spec (``backend_options.json``) and are checked against it by the contract test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputHtml,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)

from .. import backend_spec as spec
from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .base import TRAINER_CLI_ONLY, BackendAlgorithm, artifacts
from .inputs import advanced, with_help

#: Encoders the dialog suggests (any timm name works).
ENCODERS = ["resnet18", "resnet34", "resnet50"]
#: The RS-BYOL variants that pair Sentinel-2 with Sentinel-1 (all but s2-only).
S1_VARIANTS = ("single", "three", "rgb-s1s2")
#: Pre-training methods the plugin leaves to the command line, and why.
CLI_ONLY_METHODS = {"dense-moco": "per-pixel pre-training of a U-Net-3D on multi-date cubes, with its own options "
                                  "(--set): a long experiment for the command line (README, dense-moco)",
                    "ts-byol": "pixel time-series encoders (README, ts-byol): none of the dialog's image options "
                               "(encoder, crop, sensors) apply, and no GUI step uses their packages yet (the pixel "
                               "classifier's embedding takes them next)",
                    "ts-barlow": "a pixel time-series encoder, as ts-byol (README, ts-byol)"}

# parameter names
DATA = "DATA"
METHOD = "METHOD"
VARIANT = "VARIANT"
SENSORS = "SENSORS"
ENCODER = "ENCODER"
INIT = "INIT"
BANDS = "BANDS"
EPOCHS = "EPOCHS"
MAX_STEPS = "MAX_STEPS"
BATCH_SIZE = "BATCH_SIZE"
CROP = "CROP"
EPOCH_LENGTH = "EPOCH_LENGTH"
LR = "LR"
WEIGHT_DECAY = "WEIGHT_DECAY"
EMA = "EMA"
CHECKPOINT_EVERY = "CHECKPOINT_EVERY"
PRECISION = "PRECISION"
SEED = "SEED"
RESUME = "RESUME"
OVERWRITE = "OVERWRITE"
OUTPUT = "OUTPUT"
TASK = "TASK"
ARCH = "ARCH"
CLASSIFIER = "CLASSIFIER"
MAX_PIXELS = "MAX_PIXELS"
EMBEDDING_DIM = "EMBEDDING_DIM"
SMOOTH = "SMOOTH"
HEAD = "HEAD"
FREEZE_ENCODER = "FREEZE_ENCODER"
FROZEN_FRACTION = "FROZEN_FRACTION"
NO_CLASS_BALANCE = "NO_CLASS_BALANCE"
KEEP_LAST = "KEEP_LAST"
LABEL_FRACTION = "LABEL_FRACTION"
DATE = "DATE"
PERIOD = "PERIOD"
QUICK = "QUICK"
SEASON = "SEASON"
BANDS = "BANDS"
SAMPLES_PER_EPOCH = "SAMPLES_PER_EPOCH"
ENCODER_LR = "ENCODER_LR"
WITH_RANDOM = "WITH_RANDOM"
PROTOCOL = "PROTOCOL"
LABEL_FRACTIONS = "LABEL_FRACTIONS"
PARCELS_PER_CLASS = "PARCELS_PER_CLASS"
SEEDS = "SEEDS"
PATHS = "PATHS"
SCORE_SPLIT = "SCORE_SPLIT"
TEST_DATA = "TEST_DATA"
MAX_TRAIN_PIXELS = "MAX_TRAIN_PIXELS"
MAX_SCORE_PIXELS = "MAX_SCORE_PIXELS"
PROBE_HEAD = "PROBE_HEAD"
PROBE_EPOCHS = "PROBE_EPOCHS"
K = "K"
TSNE_SAMPLES = "TSNE_SAMPLES"

#: parameters named as their option (``MAX_STEPS`` -> ``--max-steps``)
def _same(*names: str) -> dict[str, tuple[str, ...]]:
    return {name: ("--" + name.lower().replace("_", "-"),) for name in names}


def _precision_parameter(alg, command: str) -> None:
    alg.addParameter(advanced(spec.enum(PRECISION, "Precision", command, "--precision")))


def _data_parameter(alg) -> None:
    alg.addParameter(with_help(QgsProcessingParameterFile(
        DATA, "Chip store (output of Prepare data)", behavior=QgsProcessingParameterFile.Folder),
        "A folder written by 'Prepare data' (it holds manifest.json)."))


def _check_data(alg, parameters, context) -> str:
    data = alg.parameterAsFile(parameters, DATA, context)
    if not data or not Path(data).is_dir():
        raise QgsProcessingException(tr("The chip store {data} is not a folder: run '1 Prepare data' first.").format(
            data=repr(data)))
    return data


def _season_parameters(alg: BackendAlgorithm, command: str) -> None:
    """How the pixel classifiers read a time series: the season calendar (``--period``, ``--season``, ``--bands``)."""
    alg.addParameter(advanced(with_help(spec.enum(PERIOD, "Time series read on (pixel model)", command, "--period"),
        "month: monthly composites of the season (a model that maps other dates, places and years); 10d: 10-day "
        "composites; dates: the acquisition dates themselves (the model maps only those dates).")))
    alg.addParameter(_string(SEASON, "Season (pixel model; MM-DD/MM-DD, empty: the chip store's period of "
                                     "interest)"))
    alg.addParameter(_string(BANDS, "Bands to train on (pixel model; comma-separated, empty: all)"))


def _string(name: str, description: str, advanced_: bool = True) -> QgsProcessingParameterString:
    param = QgsProcessingParameterString(name, description, optional=True)
    return advanced(param) if advanced_ else param


def store_sensors(data: str | Path) -> set[str] | None:
    """The sensors of a chip store (``{"s2"}``, ``{"s2", "s1"}``) from its manifest; None when it cannot be read."""
    try:
        manifest = json.loads((Path(data) / "manifest.json").read_text(encoding="utf-8"))
        return set(manifest.get("sensors") or {})
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def pretrain_inputs(method: str, variant: str, sensors_choice: str, store: set[str] | None) -> tuple[str, str | None]:
    """(the RS-BYOL variant to run, why it cannot run or None) for the chip store's sensors. 'auto' picks 'single'
    with Sentinel-1 in the store and 's2-only' without; a choice that needs Sentinel-1 the store lacks is refused
    here, before the backend starts, in the plugin's words."""
    has_s1 = store is None or "s1" in store  # an unreadable store is the backend's to report
    if method == "rs-byol":
        if variant in ("", "auto"):
            variant = "single" if has_s1 else "s2-only"
        if variant in S1_VARIANTS and not has_s1:
            return variant, tr(
                "The chip store has no Sentinel-1 data, and the RS-BYOL variant '{variant}' pairs Sentinel-2 bands "
                "with Sentinel-1 polarisations. Choose the variant 'auto' or 's2-only' (two Sentinel-2 band draws), "
                "another method, or prepare the data with Sentinel-1 layers.").format(variant=variant)
    elif sensors_choice == "s2+s1" and not has_s1:
        return variant, tr("The chip store has no Sentinel-1 data: choose the input bands 's2', or prepare the data "
                           "with Sentinel-1 layers.")
    return variant, None


class PretrainAlgorithm(BackendAlgorithm):
    COMMAND = "pretrain"
    NAME = "pretrain"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "2 Pre-train (self-supervised)")
    GROUP = QT_TRANSLATE_NOOP("@default", "2 Training")
    GROUP_ID = "training"
    HELP = QT_TRANSLATE_NOOP(
        "@default",
        "<p>Self-supervised pre-training of an encoder on the unlabelled imagery of a chip store, on the GPU when "
        "there is one (else the CPU, slowly).</p><ul>"
        "<li><b>rs-byol</b>: the two views of a crop are a Sentinel-2 band and a Sentinel-1 polarisation of the same "
        "place. Variants: <i>auto</i> (the default: <i>single</i> when the chip store has Sentinel-1, <i>s2-only</i> "
        "when it has not), <i>single</i> (one S2 band vs one S1 polarisation, 1-channel encoder), <i>three</i> (three "
        "S2 bands vs VV/VH + a copy), <i>s2-only</i> (two S2 band draws, no S1), <i>rgb-s1s2</i> (RGB vs S1 + two "
        "non-RGB bands). Needs Sentinel-1 in the chip store except for s2-only.</li>"
        "<li><b>byol, moco-v2, simsiam, barlow-twins, swav</b>: on all bands of the chip store.</li></ul>"
        "<p>Output: a model package folder (weights.safetensors + model.json + training_curves.png). Cancel stops "
        "at the next step and keeps the last checkpoint: run again with <i>Resume</i> to continue.</p>")

    OPTIONS = {DATA: ("--data",), **_same(METHOD, VARIANT, SENSORS, ENCODER, INIT, BANDS, EPOCHS, MAX_STEPS, BATCH_SIZE,
                                         CROP, EPOCH_LENGTH, LR, WEIGHT_DECAY, EMA, CHECKPOINT_EVERY, PRECISION, SEED,
                                         RESUME, OVERWRITE),
               inputs.DEVICES: ("--devices",), OUTPUT: ("--out",)}
    CLI_ONLY = {**TRAINER_CLI_ONLY,
                "--set": "a method's internal options (queue size, prototypes...): Further backend options"}
    OWN_DEFAULTS = {OVERWRITE: "a Processing output is replaced by default, as QGIS's own algorithms do"}
    LEFT_OUT = {METHOD: CLI_ONLY_METHODS}

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        c = self.COMMAND
        _data_parameter(self)
        self.addParameter(spec.enum(METHOD, "Method", c, "--method", exclude=tuple(CLI_ONLY_METHODS)))
        self.addParameter(with_help(spec.enum(VARIANT, "RS-BYOL variant", c, "--variant"),
            "auto: single (a Sentinel-2 band vs a Sentinel-1 polarisation) when the chip store has Sentinel-1, "
            "s2-only (two Sentinel-2 band draws) when it has not."))
        self.addParameter(with_help(spec.enum(
            SENSORS, "Input bands (byol, moco-v2, simsiam, barlow-twins, swav)", c, "--sensors"),
            "s2: the Sentinel-2 bands; s2+s1: Sentinel-2 and Sentinel-1 stacked. RS-BYOL chooses its own views (see "
            "the variant)."))
        self.addParameter(with_help(QgsProcessingParameterString(
            ENCODER, "Encoder (timm name; empty: the method's, {})".format(spec.method_defaults_text("encoder")),
            optional=True), "Any timm model name, e.g. resnet50 (the RS-BYOL paper's encoder, slower)."))
        self.addParameter(advanced(QgsProcessingParameterFile(
            INIT, "Start from this model package's encoder (empty: random)", behavior=QgsProcessingParameterFile.Folder,
            optional=True)))
        self.addParameter(_string(BANDS, "Sentinel-2 bands to use, comma-separated (empty: all)"))
        self.addParameter(spec.number(EPOCHS, "Epochs", c, "--epochs"))
        self.addParameter(with_help(spec.number(MAX_STEPS, "Maximum steps (empty: no limit)", c, "--max-steps"),
                                    "Stop after this many optimisation steps, whatever the epochs (for a quick try)."))
        self.addParameter(spec.number(BATCH_SIZE, "Batch size (empty: the method's, {})".format(
            spec.method_defaults_text("batch_size")), c, "--batch-size"))
        self.addParameter(spec.number(CROP, "Crop size (pixels)", c, "--crop"))
        self.addParameter(advanced(spec.number(EPOCH_LENGTH, "Samples per epoch (empty: the backend's)", c,
                                               "--epoch-length")))
        self.addParameter(advanced(spec.number(LR, "Learning rate (empty: the method's, {})".format(
            spec.method_defaults_text("lr")), c, "--lr")))
        self.addParameter(advanced(spec.number(WEIGHT_DECAY, "Weight decay (empty: the method's)", c,
                                               "--weight-decay")))
        self.addParameter(advanced(spec.number(EMA, "EMA decay of the teacher (empty: the method's)", c, "--ema")))
        self.addParameter(advanced(spec.number(CHECKPOINT_EVERY, "Checkpoint every N steps (0: only at the end)", c,
                                               "--checkpoint-every")))
        self.addParameter(advanced(spec.number(SEED, "Random seed", c, "--seed")))
        inputs.device_parameter(self)
        _precision_parameter(self, c)
        self.addParameter(QgsProcessingParameterBoolean(
            RESUME, "Resume from the checkpoint in the output folder", defaultValue=False))
        self.addParameter(with_help(QgsProcessingParameterBoolean(
            OVERWRITE, "Replace an existing package and its checkpoints in the output folder", defaultValue=True),
            "Ignored with Resume (which continues the checkpoint)."))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination(OUTPUT, "Pre-trained model package (folder)"))
        self.addOutput(QgsProcessingOutputFile("CURVES", "Training curves (PNG)"))
        self.addOutput(QgsProcessingOutputNumber("FINAL_LOSS", "Final loss"))

    def _inputs(self, parameters, context, data: str) -> tuple[str, str, str, str | None]:
        """(method, variant, sensors, why it cannot run) for the chip store at ``data``."""
        method = self.parameterAsEnumString(parameters, METHOD, context)
        chosen = self.parameterAsEnumString(parameters, VARIANT, context) or spec.AUTO
        sensors = self.parameterAsEnumString(parameters, SENSORS, context)
        variant, problem = pretrain_inputs(method, chosen, sensors, store_sensors(data))
        return method, variant, sensors, problem

    def checkParameterValues(self, parameters, context):  # noqa: N802 - QGIS API
        data = self.parameterAsFile(parameters, DATA, context) if parameters.get(DATA) else ""
        if data and Path(data).is_dir():  # in a model the store may not exist yet: backend_options checks again
            problem = self._inputs(parameters, context, data)[3]
            if problem:
                return False, problem
        return super().checkParameterValues(parameters, context)

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        data = _check_data(self, parameters, context)
        method, variant, sensors, problem = self._inputs(parameters, context, data)
        if problem:
            raise QgsProcessingException(problem)
        options: dict[str, Any] = {"data": data, "method": method}
        if method == "rs-byol":
            if (self.parameterAsEnumString(parameters, VARIANT, context) or spec.AUTO) == spec.AUTO:
                feedback.pushInfo(tr("RS-BYOL variant 'auto': '{variant}' ({why}).").format(
                    variant=variant, why=tr("the chip store has Sentinel-1") if variant == "single"
                    else tr("the chip store has no Sentinel-1")))
            options["variant"] = variant
        else:
            options["sensors"] = sensors
        options.update(self.mapped_options(parameters, context, ENCODER, INIT, BANDS, EPOCHS, MAX_STEPS, BATCH_SIZE,
                                           CROP, EPOCH_LENGTH, LR, WEIGHT_DECAY, EMA, CHECKPOINT_EVERY, SEED,
                                           PRECISION, RESUME))
        options["devices"] = inputs.devices(self, parameters, context)
        options["overwrite"] = self.parameterAsBool(parameters, OVERWRITE, context) and not options["resume"]
        options["out"] = inputs.folder_output(self, parameters, OUTPUT, context)
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = Path(self._options["out"])
        if not (out / "model.json").is_file():
            raise QgsProcessingException(tr("The backend finished but {out} holds no model.json.").format(out=out))
        s = self.summary()
        loss = s.get("final_loss", s.get("loss"))
        return {"OUTPUT": str(out), "CURVES": str(out / "training_curves.png"),
                "FINAL_LOSS": float(loss) if isinstance(loss, (int, float)) else None}


class FinetuneAlgorithm(BackendAlgorithm):
    COMMAND = "finetune"
    NAME = "finetune"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "3 Fine-tune")
    GROUP = QT_TRANSLATE_NOOP("@default", "2 Training")
    GROUP_ID = "training"
    HELP = QT_TRANSLATE_NOOP(
        "@default",
        "<p>Fine-tunes (or linear-probes, with <i>Freeze the encoder</i>) a model on the labelled parcels of a chip "
        "store: <b>segmentation</b> (U-Net or DeepLabV3+ over the encoder; pixels outside parcels are ignored) or "
        "<b>classification</b> (chip folders or parcel crops). Start from a pre-trained model package, or from a "
        "random initialisation to measure what the pre-training bought.</p>"
        "<p>With a handful of labelled polygons choose the <b>pixel</b> model: a per-pixel classifier on the spectra "
        "of every date (as SCP or dzetsaka), with the pre-trained encoder's embedding added when it helps on "
        "held-out parcels; <i>auto</i> picks the classifier by cross-validation grouped by parcel.</p>"
        "<p>Output: a model package with classes (names and colours), bands, normalisation and validation "
        "metrics: the input of <i>Predict land cover</i>.</p>")

    OPTIONS = {DATA: ("--data",), **_same(TASK, INIT, ENCODER, ARCH, CLASSIFIER, MAX_PIXELS, EMBEDDING_DIM, SMOOTH,
                                         PERIOD, SEASON, BANDS, QUICK, HEAD,
                                         FREEZE_ENCODER, FROZEN_FRACTION, NO_CLASS_BALANCE, KEEP_LAST,
                                         LABEL_FRACTION, DATE, CROP, SAMPLES_PER_EPOCH, LR, ENCODER_LR, WEIGHT_DECAY,
                                         EPOCHS, MAX_STEPS, BATCH_SIZE, CHECKPOINT_EVERY, PRECISION, SEED, RESUME,
                                         OVERWRITE),
               inputs.DEVICES: ("--devices",), OUTPUT: ("--out",)}
    CLI_ONLY = TRAINER_CLI_ONLY
    OWN_DEFAULTS = {OVERWRITE: PretrainAlgorithm.OWN_DEFAULTS[OVERWRITE]}
    LEFT_OUT = {ARCH: {"unet3d": "implied by a dense-moco package given as the initialisation (dense-moco is "
                                 "pre-trained from the command line)"}}

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        c = self.COMMAND
        _data_parameter(self)
        self.addParameter(with_help(spec.enum(TASK, "Task", c, "--task"),
            "auto: segmentation for a chip store prepared from scenes with parcels, classification for chips."))
        self.addParameter(with_help(QgsProcessingParameterFile(
            INIT, "Start from this model package (empty: random initialisation)",
            behavior=QgsProcessingParameterFile.Folder, optional=True),
            "A folder written by Pre-train (or Fine-tune)."))
        self.addParameter(_string(ENCODER, "Encoder for a random initialisation (timm name; empty: resnet18)"))
        self.addParameter(with_help(spec.enum(ARCH, "Segmentation model", c, "--arch",
                                              exclude=tuple(self.LEFT_OUT[ARCH])),
            "unet / deeplabv3plus / deeplabv3: a decoder over the encoder; pixel: a per-pixel classifier on the "
            "spectra of every date (+ the encoder's embedding), the best choice with few labelled polygons."))
        self.addParameter(with_help(spec.enum(CLASSIFIER, "Pixel classifier (pixel model)", c, "--classifier"),
            "auto: the best of logistic regression, gradient boosting, random forest and their vote (logistic "
            "regression and random forest averaged), with and without the embedding, chosen by cross-validation "
            "grouped by parcel."))
        self.addParameter(advanced(spec.number(MAX_PIXELS, "Training pixels at most (pixel model)", c,
                                               "--max-pixels")))
        self.addParameter(advanced(spec.number(EMBEDDING_DIM, "Embedding components kept (pixel model; 0: all)", c,
                                               "--embedding-dim")))
        self.addParameter(advanced(with_help(spec.number(
            SMOOTH, "Smoothing of the class probabilities, sigma in pixels (pixel model; 0: none)", c, "--smooth"),
            "Removes the isolated misclassified pixels of a per-pixel map (1: about a 3 x 3 window).")))
        _season_parameters(self, c)
        self.addParameter(with_help(QgsProcessingParameterBoolean(
            QUICK, "Quick first map (pixel model: logistic regression or the vote, 3000 training pixels)",
            defaultValue=False), "A first map in seconds; leave it off for the map you keep."))
        self.addParameter(advanced(spec.enum(HEAD, "Classification head", c, "--head")))
        self.addParameter(QgsProcessingParameterBoolean(FREEZE_ENCODER, "Freeze the encoder (linear probe)",
                                                        defaultValue=False))
        self.addParameter(advanced(spec.number(
            FROZEN_FRACTION, "Share of the steps with the encoder frozen first (empty: 0.3 from a package, 0 from "
            "random)", c, "--frozen-fraction")))
        self.addParameter(advanced(QgsProcessingParameterBoolean(
            NO_CLASS_BALANCE, "Draw segmentation crops uniformly (not each class equally often)", defaultValue=False)))
        self.addParameter(advanced(QgsProcessingParameterBoolean(
            KEEP_LAST, "Keep the last epoch's weights (not the best validation epoch's)", defaultValue=False)))
        self.addParameter(with_help(spec.number(LABEL_FRACTION, "Fraction of the labels to use", c,
                                                "--label-fraction"),
                                    "Drawn by parcel (segmentation) or by chip, stratified and seeded."))
        self.addParameter(spec.number(EPOCHS, "Epochs", c, "--epochs"))
        self.addParameter(advanced(spec.number(MAX_STEPS, "Maximum steps (empty: no limit)", c, "--max-steps")))
        self.addParameter(spec.number(BATCH_SIZE, "Batch size", c, "--batch-size"))
        self.addParameter(advanced(spec.number(CROP, "Segmentation training crop (pixels)", c, "--crop")))
        self.addParameter(advanced(spec.number(SAMPLES_PER_EPOCH, "Segmentation crops per epoch", c,
                                               "--samples-per-epoch")))
        self.addParameter(advanced(spec.number(LR, "Learning rate", c, "--lr")))
        self.addParameter(advanced(spec.number(ENCODER_LR, "Learning rate of the encoder (empty: the learning rate)",
                                               c, "--encoder-lr")))
        self.addParameter(advanced(spec.number(WEIGHT_DECAY, "Weight decay", c, "--weight-decay")))
        self.addParameter(_string(DATE, "Sentinel-2 date of a single-date model (YYYY-MM-DD; empty: the clearest)"))
        self.addParameter(advanced(spec.number(CHECKPOINT_EVERY, "Checkpoint every N steps (0: only at the end)", c,
                                               "--checkpoint-every")))
        self.addParameter(advanced(spec.number(SEED, "Random seed", c, "--seed")))
        inputs.device_parameter(self)
        _precision_parameter(self, c)
        self.addParameter(advanced(QgsProcessingParameterBoolean(
            RESUME, "Resume from the checkpoint in the output folder", defaultValue=False)))
        self.addParameter(QgsProcessingParameterBoolean(OVERWRITE, "Replace a finished package in the output "
                                                        "folder", defaultValue=True))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination(OUTPUT, "Fine-tuned model package (folder)"))
        self.addOutput(QgsProcessingOutputFile("CURVES", "Training curves (PNG)"))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        options: dict[str, Any] = {"data": _check_data(self, parameters, context)}
        options.update(self.mapped_options(parameters, context, TASK, ARCH))
        init = self.parameterAsFile(parameters, INIT, context) if parameters.get(INIT) else ""
        if init or options.get("arch") != "pixel":  # the pixel model without a package: spectra only (the default)
            options["init"] = init or "random"
        if not init:
            options.update(self.mapped_options(parameters, context, ENCODER))
        if options.get("arch") == "pixel":
            options.update(self.mapped_options(parameters, context, CLASSIFIER, MAX_PIXELS, EMBEDDING_DIM, SMOOTH,
                                               PERIOD, SEASON, BANDS, QUICK))
        options.update(self.mapped_options(parameters, context, HEAD, FREEZE_ENCODER, FROZEN_FRACTION,
                                           NO_CLASS_BALANCE, KEEP_LAST, LABEL_FRACTION, EPOCHS, MAX_STEPS, BATCH_SIZE,
                                           CROP, SAMPLES_PER_EPOCH, LR, ENCODER_LR, WEIGHT_DECAY, DATE,
                                           CHECKPOINT_EVERY, SEED, PRECISION, RESUME))
        options["devices"] = inputs.devices(self, parameters, context)
        options["overwrite"] = self.parameterAsBool(parameters, OVERWRITE, context) and not options["resume"]
        options["out"] = inputs.folder_output(self, parameters, OUTPUT, context)
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = Path(self._options["out"])
        if not (out / "model.json").is_file():
            raise QgsProcessingException(tr("The backend finished but {out} holds no model.json.").format(out=out))
        return {"OUTPUT": str(out), "CURVES": str(out / "training_curves.png")}


class EvaluateAlgorithm(BackendAlgorithm):
    COMMAND = "evaluate"
    NAME = "evaluate"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "4 Evaluate")
    GROUP = QT_TRANSLATE_NOOP("@default", "2 Training")
    GROUP_ID = "training"
    HELP = QT_TRANSLATE_NOOP(
        "@default",
        "<p><b>compare</b> (default): which path gives the best map with your labels, and what the pre-training was "
        "worth: the classic per-pixel classifiers on the spectra, the pixel classifier with the package's "
        "embedding, and the U-Net from the package and from random initialisation, all trained on the same "
        "parcels and scored on held-out parcels, at several label budgets. The report opens with one sentence that "
        "says which to use.</p>"
        "<p>Or one protocol for the package and (optionally) a random initialisation: linear probe on frozen "
        "features, kNN, or full fine-tune, at several label fractions. Metrics: overall accuracy, macro F1, "
        "per-class IoU, mIoU, confusion matrix.</p>"
        "<p>The HTML report opens in the Processing Results Viewer.</p>")

    OPTIONS = {INIT: ("--init",), WITH_RANDOM: ("--init",), DATA: ("--data",),
               **_same(TASK, PROTOCOL, LABEL_FRACTIONS, PARCELS_PER_CLASS, SEEDS, PATHS, SCORE_SPLIT, TEST_DATA,
                       MAX_TRAIN_PIXELS, MAX_SCORE_PIXELS, EMBEDDING_DIM, SMOOTH, PERIOD, SEASON, BANDS, PROBE_HEAD,
                       PROBE_EPOCHS, K, ENCODER, ARCH, DATE, CROP, SAMPLES_PER_EPOCH, LR, MAX_PIXELS, TSNE_SAMPLES,
                       EPOCHS, MAX_STEPS, BATCH_SIZE, PRECISION, SEED),
               inputs.DEVICES: ("--devices",), OUTPUT: ("--out",)}
    CLI_ONLY = {**TRAINER_CLI_ONLY,
                "--checkpoint-every": "evaluate does not checkpoint its trainings (a training option it shares)",
                "--resume": "evaluate does not resume its trainings (a training option it shares)"}

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        c = self.COMMAND
        self.addParameter(QgsProcessingParameterFile(INIT, "Model package to evaluate (compare: optional)",
                                                     behavior=QgsProcessingParameterFile.Folder, optional=True))
        self.addParameter(QgsProcessingParameterBoolean(WITH_RANDOM, "Compare with a random initialisation",
                                                        defaultValue=True))
        _data_parameter(self)
        self.addParameter(spec.enum(TASK, "Task", c, "--task"))
        self.addParameter(spec.enum(PROTOCOL, "Protocol", c, "--protocol"))
        self.addParameter(with_help(_string(
            PARCELS_PER_CLASS, "Budgets in parcels per class (compare; e.g. 2,5,10; empty: label fractions)", False),
            "Each budget trains every path on that many parcels of each class."))
        self.addParameter(_string(SEEDS, "Seeds (compare; e.g. 0,1,2: mean and spread over draws)"))
        self.addParameter(with_help(_string(
            LABEL_FRACTIONS, "Label fractions (comma-separated; empty: the backend's default)", False),
            "Each protocol runs once per fraction of the training labels."))
        self.addParameter(advanced(QgsProcessingParameterString(
            PATHS, "Paths compared (compare)", defaultValue=spec.default(c, "--paths"), optional=True)))
        self.addParameter(advanced(spec.enum(SCORE_SPLIT, "Held-out split scored (compare)", c, "--score-split")))
        self.addParameter(advanced(QgsProcessingParameterFile(
            TEST_DATA, "Independent labelled chip store to score on (compare)",
            behavior=QgsProcessingParameterFile.Folder, optional=True)))
        self.addParameter(advanced(spec.number(MAX_TRAIN_PIXELS, "Training pixels of the pixel classifiers at most "
                                               "(compare)", c, "--max-train-pixels")))
        self.addParameter(advanced(spec.number(MAX_SCORE_PIXELS, "Held-out pixels scored at most (compare)", c,
                                               "--max-score-pixels")))
        self.addParameter(advanced(spec.number(EMBEDDING_DIM, "Embedding components kept (compare; 0: all)", c,
                                               "--embedding-dim")))
        self.addParameter(advanced(spec.number(SMOOTH, "Smoothing of the pixel classifiers' maps, sigma in pixels "
                                               "(compare; 0: none)", c, "--smooth")))
        _season_parameters(self, c)
        self.addParameter(advanced(spec.enum(PROBE_HEAD, "Probe head (linear probe)", c, "--probe-head")))
        self.addParameter(advanced(spec.number(PROBE_EPOCHS, "Epochs of the probe (linear probe on chips)", c,
                                               "--probe-epochs")))
        self.addParameter(advanced(spec.number(K, "Neighbours of the kNN vote", c, "--k")))
        self.addParameter(_string(ENCODER, "Encoder of 'random' without a package (timm name; empty: resnet18)"))
        self.addParameter(advanced(spec.enum(ARCH, "Decoder (fine-tune protocol on a cube)", c, "--arch")))
        self.addParameter(_string(DATE, "Sentinel-2 date read from a multi-date cube (YYYY-MM-DD)"))
        self.addParameter(advanced(spec.number(CROP, "Training crop (pixels, cube)", c, "--crop")))
        self.addParameter(advanced(spec.number(SAMPLES_PER_EPOCH, "Training crops per epoch (cube)", c,
                                               "--samples-per-epoch")))
        self.addParameter(advanced(spec.number(LR, "Learning rate of the probes and fine-tunes", c, "--lr")))
        self.addParameter(advanced(spec.number(MAX_PIXELS, "Pixels sampled per split (cube kNN / t-SNE)", c,
                                               "--max-pixels")))
        self.addParameter(advanced(spec.number(TSNE_SAMPLES, "Items in the t-SNE plot", c, "--tsne-samples")))
        self.addParameter(advanced(spec.number(EPOCHS, "Epochs of each training (empty: the backend's default)", c,
                                               "--epochs")))
        self.addParameter(advanced(spec.number(MAX_STEPS, "Maximum steps of each training (empty: no limit)", c,
                                               "--max-steps")))
        self.addParameter(advanced(spec.number(BATCH_SIZE, "Batch size (empty: the backend's default)", c,
                                               "--batch-size")))
        self.addParameter(advanced(spec.number(SEED, "Random seed", c, "--seed")))
        inputs.device_parameter(self)
        _precision_parameter(self, c)
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination(OUTPUT, "Report folder"))
        self.addOutput(QgsProcessingOutputHtml("REPORT", "Evaluation report"))
        self.addOutput(QgsProcessingOutputFile("REPORT_JSON", "Report numbers (JSON)"))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        protocol = self.parameterAsEnumString(parameters, PROTOCOL, context)
        package = self.parameterAsFile(parameters, INIT, context) if parameters.get(INIT) else ""
        init = [package] if package else []
        if self.parameterAsBool(parameters, WITH_RANDOM, context) or protocol == "compare":
            init.append("random")
        if not package and protocol != "compare":
            raise QgsProcessingException(tr("The {protocol} protocol evaluates a model package: choose one.").format(
                protocol=protocol))
        options: dict[str, Any] = {"init": init, "data": _check_data(self, parameters, context),
                                   "protocol": protocol}
        for name in (LABEL_FRACTIONS, PARCELS_PER_CLASS, SEEDS, PATHS):
            options.update({k: v.replace(" ", "") for k, v in self.mapped_options(parameters, context, name).items()})
        options.update(self.mapped_options(parameters, context, TASK, SCORE_SPLIT, TEST_DATA, MAX_TRAIN_PIXELS,
                                           MAX_SCORE_PIXELS, EMBEDDING_DIM, SMOOTH, PERIOD, SEASON, BANDS, PROBE_HEAD,
                                           PROBE_EPOCHS, K, ENCODER, ARCH, DATE, CROP, SAMPLES_PER_EPOCH, LR,
                                           MAX_PIXELS, TSNE_SAMPLES, EPOCHS, MAX_STEPS, BATCH_SIZE, SEED, PRECISION))
        options["devices"] = inputs.devices(self, parameters, context)
        options["out"] = inputs.folder_output(self, parameters, OUTPUT, context)
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = Path(self._options["out"])
        html = next((p for p in artifacts(self._events) if p.endswith(".html")), str(out / "report.html"))
        if not Path(html).is_file():
            raise QgsProcessingException(tr("The backend finished but wrote no report ({html}).").format(html=html))
        feedback.pushInfo(tr("Report: {path}").format(path=html))
        return {"OUTPUT": str(out), "REPORT": html, "REPORT_JSON": str(out / "report.json")}
