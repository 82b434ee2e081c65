"""3 Fine-tune."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
)

from .. import backend_spec as spec
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .base import TRAINER_CLI_ONLY, BackendAlgorithm
from .inputs import advanced, with_help
from .parameters import (
    ARCH,
    BANDS,
    BATCH_SIZE,
    CHECKPOINT_EVERY,
    CLASSIFIER,
    CROP,
    DATA,
    DATE,
    EMBEDDING_DIM,
    ENCODER,
    ENCODER_LR,
    EPOCHS,
    FREEZE_ENCODER,
    FROZEN_FRACTION,
    HEAD,
    INIT,
    KEEP_LAST,
    LABEL_FRACTION,
    LR,
    MAX_PIXELS,
    MAX_STEPS,
    NO_CLASS_BALANCE,
    OUTPUT,
    OVERWRITE,
    OWN_OVERWRITE,
    PERIOD,
    PRECISION,
    QUICK,
    RESUME,
    SAMPLES_PER_EPOCH,
    SEASON,
    SEED,
    SMOOTH,
    TASK,
    WEIGHT_DECAY,
    same_options,
)
from .training_shared import (
    check_data,
    data_parameter,
    optional_string,
    package_options,
    precision_parameter,
    season_parameters,
    written_package,
)


class FinetuneAlgorithm(BackendAlgorithm):
    COMMAND = "finetune"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "3 Fine-tune")
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

    OPTIONS = {DATA: ("--data",),
               **same_options(TASK, INIT, ENCODER, ARCH, CLASSIFIER, MAX_PIXELS, EMBEDDING_DIM, SMOOTH, PERIOD, SEASON,
                              BANDS, QUICK, HEAD, FREEZE_ENCODER, FROZEN_FRACTION, NO_CLASS_BALANCE, KEEP_LAST,
                              LABEL_FRACTION, DATE, CROP, SAMPLES_PER_EPOCH, LR, ENCODER_LR, WEIGHT_DECAY, EPOCHS,
                              MAX_STEPS, BATCH_SIZE, CHECKPOINT_EVERY, PRECISION, SEED, RESUME, OVERWRITE),
               inputs.DEVICES: ("--devices",), OUTPUT: ("--out",)}
    CLI_ONLY = TRAINER_CLI_ONLY
    OWN_DEFAULTS = OWN_OVERWRITE
    LEFT_OUT = {ARCH: {"unet3d": "implied by a dense-moco package given as the initialisation (dense-moco is "
                                 "pre-trained from the command line)"}}

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        c = self.COMMAND
        data_parameter(self)
        self.addParameter(with_help(spec.enum(TASK, "Task", c, "--task"),
            "auto: segmentation for a chip store prepared from scenes with parcels, classification for chips."))
        self.addParameter(with_help(QgsProcessingParameterFile(
            INIT, "Start from this model package (empty: random initialisation)",
            behavior=QgsProcessingParameterFile.Folder, optional=True),
            "A folder written by Pre-train (or Fine-tune)."))
        self.addParameter(optional_string(ENCODER, "Encoder for a random initialisation (timm name; empty: {})"
                                          .format(spec.input_default("encoder_of_random"))))
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
        season_parameters(self, c)
        self.addParameter(with_help(QgsProcessingParameterBoolean(
            QUICK, "Quick first map (pixel model: logistic regression or the vote, 3000 training pixels)",
            defaultValue=False), "A first map in seconds; leave it off for the map you keep."))
        self.addParameter(advanced(spec.enum(HEAD, "Classification head", c, "--head")))
        self.addParameter(QgsProcessingParameterBoolean(FREEZE_ENCODER, "Freeze the encoder (linear probe)",
                                                        defaultValue=False))
        self.addParameter(advanced(spec.number(
            FROZEN_FRACTION, "Share of the steps with the encoder frozen first (empty: {} from a package, 0 from "
            "random)".format(spec.input_default("frozen_fraction_from_package")), c, "--frozen-fraction")))
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
        self.addParameter(optional_string(DATE, "Sentinel-2 date of a single-date model (YYYY-MM-DD; empty: the "
                                                "clearest)"))
        self.addParameter(advanced(spec.number(CHECKPOINT_EVERY, "Checkpoint every N steps (0: only at the end)", c,
                                               "--checkpoint-every")))
        self.addParameter(advanced(spec.number(SEED, "Random seed", c, "--seed")))
        inputs.device_parameter(self)
        precision_parameter(self, c)
        self.addParameter(advanced(QgsProcessingParameterBoolean(
            RESUME, "Resume from the checkpoint in the output folder", defaultValue=False)))
        self.addParameter(QgsProcessingParameterBoolean(OVERWRITE, "Replace a finished package in the output "
                                                        "folder", defaultValue=True))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterFolderDestination(OUTPUT, "Fine-tuned model package (folder)"))
        self.addOutput(QgsProcessingOutputFile("CURVES", "Training curves (PNG)"))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        options: dict[str, Any] = {"data": check_data(self, parameters, context)}
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
        options.update(package_options(self, parameters, context))
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = written_package(self)
        return {"OUTPUT": str(out), "CURVES": str(out / "training_curves.png")}


