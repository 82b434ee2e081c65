"""4 Evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputHtml,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)

from .. import backend_spec as spec
from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .backend_run import artifacts
from .base import TRAINER_CLI_ONLY, BackendAlgorithm
from .inputs import advanced, with_help
from .parameters import (
    ARCH,
    BANDS,
    BATCH_SIZE,
    CROP,
    DATA,
    DATE,
    EMBEDDING_DIM,
    ENCODER,
    EPOCHS,
    INIT,
    LABEL_FRACTIONS,
    LR,
    MAX_PIXELS,
    MAX_SCORE_PIXELS,
    MAX_STEPS,
    MAX_TRAIN_PIXELS,
    OUTPUT,
    PARCELS_PER_CLASS,
    PATHS,
    PERIOD,
    PRECISION,
    PROBE_EPOCHS,
    PROBE_HEAD,
    PROTOCOL,
    SAMPLES_PER_EPOCH,
    SCORE_SPLIT,
    SEASON,
    SEED,
    SEEDS,
    SMOOTH,
    TASK,
    TEST_DATA,
    TSNE_SAMPLES,
    WITH_RANDOM,
    K,
    same_options,
)
from .training_shared import check_data, data_parameter, optional_string, precision_parameter, season_parameters


class EvaluateAlgorithm(BackendAlgorithm):
    COMMAND = "evaluate"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "4 Evaluate")
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
               **same_options(TASK, PROTOCOL, LABEL_FRACTIONS, PARCELS_PER_CLASS, SEEDS, PATHS, SCORE_SPLIT,
                              TEST_DATA, MAX_TRAIN_PIXELS, MAX_SCORE_PIXELS, EMBEDDING_DIM, SMOOTH, PERIOD, SEASON,
                              BANDS, PROBE_HEAD, PROBE_EPOCHS, K, ENCODER, ARCH, DATE, CROP, SAMPLES_PER_EPOCH, LR,
                              MAX_PIXELS, TSNE_SAMPLES, EPOCHS, MAX_STEPS, BATCH_SIZE, PRECISION, SEED),
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
        data_parameter(self)
        self.addParameter(spec.enum(TASK, "Task", c, "--task"))
        self.addParameter(spec.enum(PROTOCOL, "Protocol", c, "--protocol"))
        self.addParameter(with_help(optional_string(
            PARCELS_PER_CLASS, "Budgets in parcels per class (compare; e.g. 2,5,10; empty: label fractions)", False),
            "Each budget trains every path on that many parcels of each class."))
        self.addParameter(optional_string(SEEDS, "Seeds (compare; e.g. 0,1,2: mean and spread over draws)"))
        self.addParameter(with_help(optional_string(
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
        season_parameters(self, c)
        self.addParameter(advanced(spec.enum(PROBE_HEAD, "Probe head (linear probe)", c, "--probe-head")))
        self.addParameter(advanced(spec.number(PROBE_EPOCHS, "Epochs of the probe (linear probe on chips)", c,
                                               "--probe-epochs")))
        self.addParameter(advanced(spec.number(K, "Neighbours of the kNN vote", c, "--k")))
        self.addParameter(optional_string(ENCODER, "Encoder of 'random' without a package (timm name; empty: "
                                                   "{})".format(spec.input_default("encoder_of_random"))))
        self.addParameter(advanced(spec.enum(ARCH, "Decoder (fine-tune protocol on a cube)", c, "--arch")))
        self.addParameter(optional_string(DATE, "Sentinel-2 date read from a multi-date cube (YYYY-MM-DD)"))
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
        precision_parameter(self, c)
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
        options: dict[str, Any] = {"init": init, "data": check_data(self, parameters, context),
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
