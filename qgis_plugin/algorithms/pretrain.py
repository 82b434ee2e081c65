"""2 Pre-train (self-supervised)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
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
from .base import TRAINER_CLI_ONLY, BackendAlgorithm
from .inputs import advanced, with_help
from .parameters import (
    BANDS,
    BATCH_SIZE,
    CHECKPOINT_EVERY,
    CROP,
    DATA,
    EMA,
    ENCODER,
    EPOCH_LENGTH,
    EPOCHS,
    INIT,
    LR,
    MAX_STEPS,
    METHOD,
    OUTPUT,
    OVERWRITE,
    OWN_OVERWRITE,
    PRECISION,
    RESUME,
    SEED,
    SENSORS,
    VARIANT,
    WEIGHT_DECAY,
    same_options,
)
from .training_shared import (
    check_data,
    data_parameter,
    optional_string,
    package_options,
    precision_parameter,
    written_package,
)

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
    DISPLAY = QT_TRANSLATE_NOOP("@default", "2 Pre-train (self-supervised)")
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

    OPTIONS = {DATA: ("--data",),
               **same_options(METHOD, VARIANT, SENSORS, ENCODER, INIT, BANDS, EPOCHS, MAX_STEPS, BATCH_SIZE, CROP,
                              EPOCH_LENGTH, LR, WEIGHT_DECAY, EMA, CHECKPOINT_EVERY, PRECISION, SEED, RESUME,
                              OVERWRITE),
               inputs.DEVICES: ("--devices",), OUTPUT: ("--out",)}
    CLI_ONLY = {**TRAINER_CLI_ONLY,
                "--set": "a method's internal options (queue size, prototypes...): Further backend options"}
    OWN_DEFAULTS = OWN_OVERWRITE
    LEFT_OUT = {METHOD: CLI_ONLY_METHODS}

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        c = self.COMMAND
        data_parameter(self)
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
        self.addParameter(optional_string(BANDS, "Sentinel-2 bands to use, comma-separated (empty: all)"))
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
        precision_parameter(self, c)
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
        data = check_data(self, parameters, context)
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
        options.update(package_options(self, parameters, context))
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = written_package(self)
        s = self.summary()
        loss = s.get("final_loss", s.get("loss"))
        return {"OUTPUT": str(out), "CURVES": str(out / "training_curves.png"),
                "FINAL_LOSS": float(loss) if isinstance(loss, (int, float)) else None}


