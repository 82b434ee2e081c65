"""2 Pre-train, 3 Fine-tune, 4 Evaluate."""

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
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .base import BackendAlgorithm, artifacts

METHODS = ["rs-byol", "byol", "moco-v2", "simsiam", "barlow-twins", "swav"]
#: "auto" is the plugin's: 'single' when the chip store has Sentinel-1, 's2-only' when it has not.
VARIANTS = ["auto", "single", "three", "s2-only", "rgb-s1s2"]
#: The RS-BYOL variants that pair Sentinel-2 with Sentinel-1 (all but s2-only).
S1_VARIANTS = ("single", "three", "rgb-s1s2")
SENSORS = ["s2", "s2+s1"]
ENCODERS = ["resnet18", "resnet34", "resnet50"]
PRECISIONS = ["auto", "32", "16-mixed", "bf16-mixed"]
TASKS = ["auto", "segmentation", "classification"]
ARCHS = ["unet", "deeplabv3plus", "deeplabv3", "pixel"]
CLASSIFIERS = ["auto", "linear", "gbm", "rf", "mlp"]
HEADS = ["linear", "mlp"]
PROTOCOLS = ["compare", "linear", "knn", "finetune"]


def _data_parameter(alg) -> None:
    alg.addParameter(inputs.with_help(QgsProcessingParameterFile(
        "DATA", "Chip store (output of Prepare data)", behavior=QgsProcessingParameterFile.Folder),
        "A folder written by 'Prepare data' (it holds manifest.json)."))


def _check_data(alg, parameters, context) -> str:
    data = alg.parameterAsFile(parameters, "DATA", context)
    if not data or not Path(data).is_dir():
        raise QgsProcessingException(tr("The chip store {data} is not a folder: run '1 Prepare data' first.").format(
            data=repr(data)))
    return data


def _device_parameters(alg) -> None:
    inputs.device_parameter(alg)


def _devices(alg, parameters, context) -> str:
    return inputs.devices(alg, parameters, context)


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

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        _data_parameter(self)
        self.addParameter(QgsProcessingParameterEnum("METHOD", "Method", METHODS, defaultValue="rs-byol",
                                                     usesStaticStrings=True))
        self.addParameter(inputs.with_help(QgsProcessingParameterEnum(
            "VARIANT", "RS-BYOL variant", VARIANTS, defaultValue="auto", usesStaticStrings=True),
            "auto: single (a Sentinel-2 band vs a Sentinel-1 polarisation) when the chip store has Sentinel-1, "
            "s2-only (two Sentinel-2 band draws) when it has not."))
        self.addParameter(inputs.with_help(QgsProcessingParameterEnum(
            "SENSORS", "Input bands (byol, moco-v2, simsiam, barlow-twins, swav)", SENSORS, defaultValue="s2",
            usesStaticStrings=True), "s2: the Sentinel-2 bands; s2+s1: Sentinel-2 and Sentinel-1 stacked. "
            "RS-BYOL chooses its own views (see the variant)."))
        self.addParameter(inputs.with_help(QgsProcessingParameterString(
            "ENCODER", "Encoder (timm name; empty: resnet50 for rs-byol, resnet18 otherwise)", defaultValue="resnet18",
            optional=True),
            "Any timm model name; resnet50 is the RS-BYOL paper's encoder, resnet18 is faster."))
        self.addParameter(QgsProcessingParameterNumber("EPOCHS", "Epochs", QgsProcessingParameterNumber.Integer,
                                                       10, minValue=1, maxValue=10000))
        self.addParameter(inputs.with_help(QgsProcessingParameterNumber(
            "MAX_STEPS", "Maximum steps (0: no limit)", QgsProcessingParameterNumber.Integer, 0, minValue=0),
            "Stop after this many optimisation steps, whatever the epochs (for a quick try)."))
        self.addParameter(QgsProcessingParameterNumber("BATCH_SIZE", "Batch size (0: the method's default, 32)",
                                                       QgsProcessingParameterNumber.Integer, 0, minValue=0,
                                                       maxValue=4096))
        self.addParameter(QgsProcessingParameterNumber("CROP", "Crop size (pixels)",
                                                       QgsProcessingParameterNumber.Integer, 64, minValue=8,
                                                       maxValue=1024))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "LR", "Learning rate (0: the method's default)", QgsProcessingParameterNumber.Double, 0.0, minValue=0.0)))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "CHECKPOINT_EVERY", "Checkpoint every N steps", QgsProcessingParameterNumber.Integer, 200, minValue=1)))
        _device_parameters(self)
        self.addParameter(inputs.advanced(QgsProcessingParameterEnum(
            "PRECISION", "Precision", PRECISIONS, defaultValue="auto", usesStaticStrings=True)))
        self.addParameter(QgsProcessingParameterBoolean(
            "RESUME", "Resume from the checkpoint in the output folder", defaultValue=False))
        self.addParameter(inputs.with_help(QgsProcessingParameterBoolean(
            "OVERWRITE", "Replace an existing package and its checkpoints in the output folder", defaultValue=True),
            "Ignored with Resume (which continues the checkpoint)."))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Pre-trained model package (folder)"))
        self.addOutput(QgsProcessingOutputFile("CURVES", "Training curves (PNG)"))
        self.addOutput(QgsProcessingOutputNumber("FINAL_LOSS", "Final loss"))

    def _inputs(self, parameters, context, data: str) -> tuple[str, str, str, str | None]:
        """(method, variant, sensors, why it cannot run) for the chip store at ``data``."""
        method = self.parameterAsEnumString(parameters, "METHOD", context) or "rs-byol"
        chosen = self.parameterAsEnumString(parameters, "VARIANT", context) or "auto"
        sensors = self.parameterAsEnumString(parameters, "SENSORS", context) or "s2"
        variant, problem = pretrain_inputs(method, chosen, sensors, store_sensors(data))
        return method, variant, sensors, problem

    def checkParameterValues(self, parameters, context):  # noqa: N802 - QGIS API
        data = self.parameterAsFile(parameters, "DATA", context) if parameters.get("DATA") else ""
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
            chosen = self.parameterAsEnumString(parameters, "VARIANT", context) or "auto"
            if chosen == "auto":
                feedback.pushInfo(tr("RS-BYOL variant 'auto': '{variant}' ({why}).").format(
                    variant=variant, why=tr("the chip store has Sentinel-1") if variant == "single"
                    else tr("the chip store has no Sentinel-1")))
            options["variant"] = variant
        else:
            options["sensors"] = sensors
        encoder = self.parameterAsString(parameters, "ENCODER", context).strip() if parameters.get("ENCODER") \
            not in (None, "") else ""
        if encoder:
            options["encoder"] = encoder
        options["epochs"] = self.parameterAsInt(parameters, "EPOCHS", context)
        for name in ("MAX_STEPS", "BATCH_SIZE"):
            value = self.parameterAsInt(parameters, name, context)
            if value > 0:
                options[name.lower()] = value
        options["crop"] = self.parameterAsInt(parameters, "CROP", context)
        lr = self.parameterAsDouble(parameters, "LR", context)
        if lr > 0:
            options["lr"] = lr
        every = self.parameterAsInt(parameters, "CHECKPOINT_EVERY", context)
        if every and every != 200:
            options["checkpoint_every"] = every
        options["devices"] = _devices(self, parameters, context)
        precision = self.parameterAsEnumString(parameters, "PRECISION", context)
        if precision and precision != "auto":
            options["precision"] = precision
        resume = self.parameterAsBool(parameters, "RESUME", context)
        options["resume"] = resume
        options["overwrite"] = self.parameterAsBool(parameters, "OVERWRITE", context) and not resume
        options["out"] = inputs.folder_output(self, parameters, "OUTPUT", context)
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

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        _data_parameter(self)
        self.addParameter(inputs.with_help(QgsProcessingParameterEnum(
            "TASK", "Task", TASKS, defaultValue="auto", usesStaticStrings=True),
            "auto: segmentation for a chip store prepared from scenes with parcels, classification for chips."))
        self.addParameter(inputs.with_help(QgsProcessingParameterFile(
            "INIT", "Start from this model package (empty: random initialisation)",
            behavior=QgsProcessingParameterFile.Folder, optional=True),
            "A folder written by Pre-train (or Fine-tune)."))
        self.addParameter(inputs.advanced(QgsProcessingParameterString(
            "ENCODER", "Encoder for a random initialisation (timm name; empty: resnet18)", optional=True)))
        self.addParameter(inputs.with_help(QgsProcessingParameterEnum(
            "ARCH", "Segmentation model", ARCHS, defaultValue="unet", usesStaticStrings=True),
            "unet / deeplabv3plus / deeplabv3: a decoder over the encoder; pixel: a per-pixel classifier on the "
            "spectra of every date (+ the encoder's embedding), the best choice with few labelled polygons."))
        self.addParameter(inputs.with_help(QgsProcessingParameterEnum(
            "CLASSIFIER", "Pixel classifier (pixel model)", CLASSIFIERS, defaultValue="auto",
            usesStaticStrings=True),
            "auto: the best of logistic regression, gradient boosting and random forest (with and without the "
            "embedding), chosen by cross-validation grouped by parcel."))
        self.addParameter(inputs.advanced(QgsProcessingParameterEnum(
            "HEAD", "Classification head", HEADS, defaultValue="linear", usesStaticStrings=True)))
        self.addParameter(QgsProcessingParameterBoolean("FREEZE_ENCODER", "Freeze the encoder (linear probe)",
                                                        defaultValue=False))
        self.addParameter(inputs.with_help(QgsProcessingParameterNumber(
            "LABEL_FRACTION", "Fraction of the labels to use", QgsProcessingParameterNumber.Double, 1.0,
            minValue=0.001, maxValue=1.0), "Drawn by parcel (segmentation) or by chip, stratified and seeded."))
        self.addParameter(QgsProcessingParameterNumber("EPOCHS", "Epochs", QgsProcessingParameterNumber.Integer,
                                                       20, minValue=1, maxValue=10000))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "MAX_STEPS", "Maximum steps (0: no limit)", QgsProcessingParameterNumber.Integer, 0, minValue=0)))
        self.addParameter(QgsProcessingParameterNumber("BATCH_SIZE", "Batch size",
                                                       QgsProcessingParameterNumber.Integer, 16, minValue=1,
                                                       maxValue=4096))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "CROP", "Segmentation training crop (pixels, a multiple of 32)", QgsProcessingParameterNumber.Integer,
            128, minValue=32, maxValue=2048)))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "LR", "Learning rate (0: the backend's default, 0.001)", QgsProcessingParameterNumber.Double, 0.0,
            minValue=0.0)))
        self.addParameter(inputs.advanced(QgsProcessingParameterString(
            "DATE", "Sentinel-2 date of a single-date model (YYYY-MM-DD; empty: the clearest)", optional=True)))
        _device_parameters(self)
        self.addParameter(QgsProcessingParameterBoolean("OVERWRITE", "Replace a finished package in the output "
                                                        "folder", defaultValue=True))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Fine-tuned model package (folder)"))
        self.addOutput(QgsProcessingOutputFile("CURVES", "Training curves (PNG)"))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        options: dict[str, Any] = {"data": _check_data(self, parameters, context)}
        task = self.parameterAsEnumString(parameters, "TASK", context) or "auto"
        if task != "auto":
            options["task"] = task
        init = self.parameterAsFile(parameters, "INIT", context) if parameters.get("INIT") else ""
        arch = self.parameterAsEnumString(parameters, "ARCH", context) or "unet"
        if init or arch != "pixel":  # the pixel model without a package: spectra only (the backend's default)
            options["init"] = init or "random"
        encoder = self.parameterAsString(parameters, "ENCODER", context).strip() if parameters.get("ENCODER") else ""
        if encoder and not init:
            options["encoder"] = encoder
        options["arch"] = arch
        classifier = self.parameterAsEnumString(parameters, "CLASSIFIER", context) or "auto"
        if arch == "pixel" and classifier != "auto":
            options["classifier"] = classifier
        head = self.parameterAsEnumString(parameters, "HEAD", context)
        if head and head != "linear":
            options["head"] = head
        options["freeze_encoder"] = self.parameterAsBool(parameters, "FREEZE_ENCODER", context)
        fraction = self.parameterAsDouble(parameters, "LABEL_FRACTION", context)
        if fraction < 1.0:
            options["label_fraction"] = fraction
        options["epochs"] = self.parameterAsInt(parameters, "EPOCHS", context)
        max_steps = self.parameterAsInt(parameters, "MAX_STEPS", context)
        if max_steps > 0:
            options["max_steps"] = max_steps
        options["batch_size"] = self.parameterAsInt(parameters, "BATCH_SIZE", context)
        crop = self.parameterAsInt(parameters, "CROP", context)
        if crop and crop != 128:
            options["crop"] = crop
        lr = self.parameterAsDouble(parameters, "LR", context)
        if lr > 0:
            options["lr"] = lr
        date = self.parameterAsString(parameters, "DATE", context).strip() if parameters.get("DATE") else ""
        if date:
            options["date"] = date
        options["devices"] = _devices(self, parameters, context)
        options["overwrite"] = self.parameterAsBool(parameters, "OVERWRITE", context)
        options["out"] = inputs.folder_output(self, parameters, "OUTPUT", context)
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

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterFile("INIT", "Model package to evaluate (compare: optional)",
                                                     behavior=QgsProcessingParameterFile.Folder, optional=True))
        self.addParameter(QgsProcessingParameterBoolean("WITH_RANDOM", "Compare with a random initialisation",
                                                        defaultValue=True))
        _data_parameter(self)
        self.addParameter(QgsProcessingParameterEnum("TASK", "Task", TASKS, defaultValue="auto",
                                                     usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterEnum("PROTOCOL", "Protocol", PROTOCOLS, defaultValue="compare",
                                                     usesStaticStrings=True))
        self.addParameter(inputs.with_help(QgsProcessingParameterString(
            "PARCELS_PER_CLASS", "Budgets in parcels per class (compare; e.g. 2,5,10; empty: label fractions)",
            optional=True), "Each budget trains every path on that many parcels of each class."))
        self.addParameter(inputs.advanced(QgsProcessingParameterString(
            "SEEDS", "Seeds (compare; e.g. 0,1,2: mean and spread over draws)", optional=True)))
        self.addParameter(inputs.advanced(QgsProcessingParameterEnum(
            "PROBE_HEAD", "Probe head (linear probe)", HEADS, defaultValue="linear", usesStaticStrings=True)))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "K", "Neighbours of the kNN vote", QgsProcessingParameterNumber.Integer, 20, minValue=1)))
        self.addParameter(inputs.with_help(QgsProcessingParameterString(
            "LABEL_FRACTIONS", "Label fractions (comma-separated; empty: the backend's default)", optional=True),
            "Each protocol runs once per fraction of the training labels."))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "EPOCHS", "Epochs of the fine-tune protocol (0: the backend's default)",
            QgsProcessingParameterNumber.Integer, 0, minValue=0)))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "MAX_STEPS", "Maximum steps of each training (0: no limit)", QgsProcessingParameterNumber.Integer, 0,
            minValue=0)))
        _device_parameters(self)
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Report folder"))
        self.addOutput(QgsProcessingOutputHtml("REPORT", "Evaluation report"))
        self.addOutput(QgsProcessingOutputFile("REPORT_JSON", "Report numbers (JSON)"))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        protocol = self.parameterAsEnumString(parameters, "PROTOCOL", context) or "compare"
        package = self.parameterAsFile(parameters, "INIT", context) if parameters.get("INIT") else ""
        init = [package] if package else []
        if self.parameterAsBool(parameters, "WITH_RANDOM", context) or protocol == "compare":
            init.append("random")
        if not package and protocol != "compare":
            raise QgsProcessingException(tr("The {protocol} protocol evaluates a model package: choose one.").format(
                protocol=protocol))
        options: dict[str, Any] = {"init": init, "data": _check_data(self, parameters, context),
                                   "protocol": protocol}
        for name, key in (("LABEL_FRACTIONS", "label_fractions"), ("PARCELS_PER_CLASS", "parcels_per_class"),
                          ("SEEDS", "seeds")):
            text = self.parameterAsString(parameters, name, context).replace(" ", "") if parameters.get(name) else ""
            if text:
                options[key] = text
        task = self.parameterAsEnumString(parameters, "TASK", context) or "auto"
        if task != "auto":
            options["task"] = task
        head = self.parameterAsEnumString(parameters, "PROBE_HEAD", context)
        if head and head != "linear":
            options["probe_head"] = head
        k = self.parameterAsInt(parameters, "K", context)
        if k and k != 20:
            options["k"] = k
        for name in ("EPOCHS", "MAX_STEPS"):
            value = self.parameterAsInt(parameters, name, context)
            if value > 0:
                options[name.lower()] = value
        options["devices"] = _devices(self, parameters, context)
        options["out"] = inputs.folder_output(self, parameters, "OUTPUT", context)
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = Path(self._options["out"])
        html = next((p for p in artifacts(self._events) if p.endswith(".html")), str(out / "report.html"))
        if not Path(html).is_file():
            raise QgsProcessingException(tr("The backend finished but wrote no report ({html}).").format(html=html))
        feedback.pushInfo(tr("Report: {path}").format(path=html))
        return {"OUTPUT": str(out), "REPORT": html, "REPORT_JSON": str(out / "report.json")}
