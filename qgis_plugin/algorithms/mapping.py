"""5 Predict land cover, 5b Per-pixel embedding, 6 Label parcels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from .. import backend_spec as spec
from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .base import BackendAlgorithm
from .inputs import advanced, with_help
from .styling import ConfidenceStyler, ParcelsStyler, PredictionStyler, attach

# parameter names
MODEL = "MODEL"
TILE = "TILE"
OVERLAP = "OVERLAP"
DATE = "DATE"
BATCH_SIZE = "BATCH_SIZE"
OUTPUT = "OUTPUT"
CONFIDENCE = "CONFIDENCE"
DIM = "DIM"
LEVELS = "LEVELS"
DTYPE = "DTYPE"
SAMPLE_WINDOWS = "SAMPLE_WINDOWS"
SEED = "SEED"
MAP = "MAP"
MAP_BAND = "MAP_BAND"
CONFIDENCE_SCALE = "CONFIDENCE_SCALE"
PARCELS = "PARCELS"
ID_FIELD = "ID_FIELD"
CLASSES = "CLASSES"
MIN_PIXELS = "MIN_PIXELS"
MIN_FRACTION = "MIN_FRACTION"
MIN_CONFIDENCE = "MIN_CONFIDENCE"
WINDOW = "WINDOW"
OVERWRITE = "OVERWRITE"


def _same(*names: str) -> dict[str, tuple[str, ...]]:
    return {name: ("--" + name.lower().replace("_", "-"),) for name in names}


def _model(alg, parameters, context) -> str:
    model = alg.parameterAsFile(parameters, MODEL, context)
    pick = tr("Pick the folder a Fine-tune run wrote (it holds model.json and weights.safetensors; the dialog "
              "writes it as <output folder>/finetuned).")
    if not model:
        raise QgsProcessingException(tr("Choose the model package. {pick}").format(pick=pick))
    if not Path(model).exists():
        raise QgsProcessingException(tr("The model folder {model} does not exist. {pick}").format(
            model=repr(model), pick=pick))
    if not (Path(model) / "model.json").is_file():
        raise QgsProcessingException(tr("{model} is not an eo-ssl model package (no model.json in it). {pick}").format(
            model=repr(model), pick=pick))
    return model


def _tiling_parameters(alg, tile_help: str) -> None:
    c = alg.COMMAND
    alg.addParameter(with_help(spec.number(TILE, "Tile size (pixels)", c, "--tile"), tile_help))
    alg.addParameter(spec.number(OVERLAP, "Tile overlap (fraction)", c, "--overlap"))
    alg.addParameter(advanced(spec.number(BATCH_SIZE, "Batch size (empty: 4 on the CPU, 32 on a GPU)", c,
                                          "--batch-size")))


def _model_name(model_dir: str) -> str:
    """What the map layer is named after: ``segmentation resnet18``, ``pixel vote`` (a pixel classifier without an
    embedding has no encoder), ``pixel vote + resnet18``."""
    try:
        meta = json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8"))
        arch = meta.get("architecture") or {}
        encoder, decoder = arch.get("encoder"), arch.get("decoder")
        if arch.get("family") == "pixel" or (decoder and str(decoder).startswith("pixel")):
            return " + ".join(str(p) for p in (decoder or "pixel classifier", encoder) if p)
        return " ".join(str(p) for p in (meta.get("task") or "model", encoder) if p)
    except (OSError, ValueError, AttributeError):
        return Path(model_dir).name


def parcels_layer_name(out: str) -> str:
    """The labelled parcels' layer name, with the file's name: two outputs of a batch are told apart."""
    stem = Path(out).stem if out else ""
    return tr("Labelled parcels ({name})").format(name=stem) if stem else tr("Labelled parcels")


class PredictAlgorithm(BackendAlgorithm):
    COMMAND = "predict"
    NAME = "predict"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "5 Predict land cover")
    GROUP = QT_TRANSLATE_NOOP("@default", "3 Mapping")
    GROUP_ID = "mapping"
    HELP = QT_TRANSLATE_NOOP(
        "@default",
        "<p>Predicts a land-cover raster over the area of interest with a fine-tuned model package: tiled, "
        "overlapping windows blended without seams, written as a compressed GeoTIFF of class ids with a colour "
        "table and a <code>.qml</code> style (the class legend), plus an optional confidence raster (the highest "
        "class probability, 0..1).</p><p>The model's bands are matched to the inputs by name; a model whose bands "
        "are missing from the inputs is refused before any work. Loaded into the project with the class style "
        "and legend.</p>")

    OPTIONS = {MODEL: ("--model",), **inputs.INPUT_OPTIONS, **inputs.FEATURE_OPTIONS,
               **_same(TILE, OVERLAP, DATE, BATCH_SIZE),
               inputs.DEVICES: ("--devices",), OUTPUT: ("--out",), CONFIDENCE: ("--confidence",)}
    CLI_ONLY = {**inputs.GRID_CLI_ONLY,
                "--scenes": "many scenes over several processes into one folder and mosaic: a job for the command "
                            "line (Processing's batch mode runs this algorithm once per scene)",
                "--out-dir": "with --scenes only", "--confidence-maps": "with --scenes only",
                "--num-nodes": "with --scenes only: machines started with torchrun"}

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(with_help(QgsProcessingParameterFile(
            MODEL, "Model package (from Fine-tune)", behavior=QgsProcessingParameterFile.Folder),
            "A folder holding weights.safetensors and model.json."))
        inputs.raster_input_parameters(self, s2_optional=True, with_grid=False)
        inputs.feature_input_parameters(self)
        _tiling_parameters(self, "Empty: 256 for a segmentation model (a multiple of the model's stride); a "
                                 "classification model uses its chip size.")
        self.addParameter(advanced(QgsProcessingParameterString(
            DATE, "Sentinel-2 date to read (YYYY-MM-DD; empty: the clearest in the AOI)", optional=True)))
        inputs.device_parameter(self)
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination(OUTPUT, "Land-cover map"))
        self.addParameter(QgsProcessingParameterRasterDestination(CONFIDENCE, "Confidence", optional=True,
                                                                  createByDefault=True))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        model = _model(self, parameters, context)
        options: dict[str, Any] = {"model": model}
        options.update(inputs.raster_input_options(self, parameters, context, feedback, with_grid=False,
                                                   s2_required=not inputs.has_features(parameters)))
        options.update(inputs.feature_input_options(self, parameters, context))
        options.update(self.mapped_options(parameters, context, TILE, OVERLAP, DATE, BATCH_SIZE))
        options["devices"] = inputs.devices(self, parameters, context)
        out = self.parameterAsOutputLayer(parameters, OUTPUT, context)
        options["out"] = inputs.ensure_parent(out)
        conf = self.parameterAsOutputLayer(parameters, CONFIDENCE, context) if parameters.get(CONFIDENCE) else ""
        if conf:
            options["confidence"] = inputs.ensure_parent(conf)
        self._model_name = _model_name(model)
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = self._options["out"]
        if not Path(out).is_file():
            raise QgsProcessingException(tr("The backend finished but wrote no map ({out}).").format(out=out))
        results = {"OUTPUT": out}
        conf = self._options.get("confidence")
        if conf:
            if not Path(conf).is_file():
                raise QgsProcessingException(tr("The backend finished but wrote no confidence raster ({conf}).").format(
                    conf=conf))
            results["CONFIDENCE"] = conf
        return results

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 - QGIS API (main thread)
        out = self._options.get("out", "")
        qml = str(Path(out).with_suffix(".qml")) if out else None
        name = getattr(self, "_model_name", "")
        attach(context, out, PredictionStyler(qml), f"Land cover ({name})" if name else "Land cover")
        conf = self._options.get("confidence")
        if conf:
            attach(context, conf, ConfidenceStyler(), "Confidence")
        return {}


class EmbedAlgorithm(BackendAlgorithm):
    COMMAND = "embed"
    NAME = "embed"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "5b Per-pixel embedding")
    GROUP = QT_TRANSLATE_NOOP("@default", "3 Mapping")
    GROUP_ID = "mapping"
    HELP = QT_TRANSLATE_NOOP(
        "@default",
        "<p>Writes the per-pixel features of a pre-trained encoder (a package of Pre-train, or an imported one) as a "
        "multi-band raster on the analysis grid: the encoder's feature pyramid at full resolution, reduced to its "
        "first principal components. Feed it, alone or with the bands, to any classifier (QGIS's, SCP, dzetsaka), "
        "as with published satellite-embedding datasets.</p><p>Several dates: the embedding of their per-band "
        "median composite. 8-bit or 16-bit output is scaled per band (the scale and offset travel with the file).</p>")

    OPTIONS = {MODEL: ("--model",), **inputs.INPUT_OPTIONS,
               **_same(DIM, LEVELS, DTYPE, DATE, TILE, OVERLAP, BATCH_SIZE, SAMPLE_WINDOWS, SEED),
               inputs.DEVICES: ("--devices",), OUTPUT: ("--out",)}
    CLI_ONLY = inputs.GRID_CLI_ONLY

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        c = self.COMMAND
        self.addParameter(with_help(QgsProcessingParameterFile(
            MODEL, "Encoder package (from Pre-train)", behavior=QgsProcessingParameterFile.Folder),
            "A folder holding weights.safetensors and model.json with a CNN encoder."))
        inputs.raster_input_parameters(self, s2_optional=False, with_grid=False)
        self.addParameter(with_help(spec.number(DIM, "Bands to keep (principal components; 0: every feature)", c,
                                                "--dim"),
                                    "16 components keep most of the variance of a ResNet-18 pyramid."))
        self.addParameter(spec.enum(DTYPE, "Data type", c, "--dtype"))
        self.addParameter(advanced(QgsProcessingParameterString(
            LEVELS, "Encoder pyramid levels (comma-separated)", defaultValue=spec.default(c, "--levels"),
            optional=True)))
        self.addParameter(advanced(QgsProcessingParameterString(
            DATE, "Sentinel-2 date to embed (YYYY-MM-DD; empty: the composite of every date)", optional=True)))
        _tiling_parameters(self, "A multiple of 32.")
        self.addParameter(advanced(spec.number(SAMPLE_WINDOWS, "Windows the projection is fitted on", c,
                                               "--sample-windows")))
        self.addParameter(advanced(spec.number(SEED, "Random seed of those windows", c, "--seed")))
        inputs.device_parameter(self)
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination(OUTPUT, "Embedding"))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        options: dict[str, Any] = {"model": _model(self, parameters, context)}
        options.update(inputs.raster_input_options(self, parameters, context, feedback, with_grid=False))
        options.update(self.mapped_options(parameters, context, DIM, LEVELS, DTYPE, DATE, TILE, OVERLAP, BATCH_SIZE,
                                           SAMPLE_WINDOWS, SEED))
        options["devices"] = inputs.devices(self, parameters, context)
        options["out"] = inputs.ensure_parent(self.parameterAsOutputLayer(parameters, OUTPUT, context))
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = self._options["out"]
        if not Path(out).is_file():
            raise QgsProcessingException(tr("The backend finished but wrote no embedding ({out}).").format(out=out))
        return {"OUTPUT": out}


class LabelParcelsAlgorithm(BackendAlgorithm):
    COMMAND = "label-parcels"
    NAME = "label_parcels"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "6 Label parcels")
    GROUP = QT_TRANSLATE_NOOP("@default", "4 Parcels")
    GROUP_ID = "parcels"
    HELP = QT_TRANSLATE_NOOP(
        "@default",
        "<p>Labels every parcel from a land-cover map: the majority class (id and name), its share of the parcel's "
        "valid pixels, the mean confidence, the class entropy, pixel counts and a <b>status</b>: <i>labelled</i>, "
        "<i>uncertain</i> (majority share or confidence below the thresholds), <i>too_small</i>, <i>no_data</i>, "
        "<i>outside_raster</i>, or a geometry problem. Every input feature is in the output with all its "
        "attributes; the input is never modified.</p><p>Review the uncertain parcels with the eo-ssl parcel "
        "labelling tool ('next uncertain parcel'), then export a dataset.</p>")

    OPTIONS = {MAP: ("--map",), CONFIDENCE: ("--confidence",), PARCELS: ("--parcels", "--parcels-layer"),
               **_same(MAP_BAND, CONFIDENCE_SCALE, ID_FIELD, CLASSES, MIN_PIXELS, MIN_FRACTION, MIN_CONFIDENCE,
                       WINDOW, OVERWRITE),
               OUTPUT: ("--out",)}
    OWN_DEFAULTS = {OVERWRITE: "a Processing output is replaced by default, as QGIS's own algorithms do"}

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        c = self.COMMAND
        self.addParameter(QgsProcessingParameterRasterLayer(MAP, "Land-cover map (class ids)"))
        self.addParameter(advanced(spec.number(MAP_BAND, "Band of the map holding the class ids", c, "--map-band")))
        self.addParameter(QgsProcessingParameterRasterLayer(CONFIDENCE, "Confidence raster (0..1)", optional=True))
        self.addParameter(advanced(spec.number(
            CONFIDENCE_SCALE, "Scale of integer confidence values (empty: the raster's own)", c, "--confidence-scale")))
        self.addParameter(with_help(QgsProcessingParameterFeatureSource(
            PARCELS, "Parcels", [QgsProcessing.TypeVectorPolygon]),
            "Polygons in any CRS; 'Selected features only' labels just the selection."))
        self.addParameter(QgsProcessingParameterField(ID_FIELD, "Parcel id field (for messages and exports)",
                                                      parentLayerParameterName=PARCELS, optional=True))
        self.addParameter(advanced(QgsProcessingParameterFile(
            CLASSES, "Class names (model.json, dataset.json, .qml or a JSON list; default: the map's own)",
            optional=True)))
        self.addParameter(spec.number(MIN_PIXELS, "Minimum valid pixels", c, "--min-pixels"))
        self.addParameter(spec.number(MIN_FRACTION, "Minimum majority share", c, "--min-fraction"))
        self.addParameter(spec.number(MIN_CONFIDENCE, "Minimum mean confidence", c, "--min-confidence"))
        self.addParameter(advanced(spec.number(WINDOW, "Processing window (pixels)", c, "--window")))
        self.addParameter(advanced(QgsProcessingParameterBoolean(
            OVERWRITE, "Replace the output if it exists", defaultValue=True)))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterVectorDestination(
            OUTPUT, "Labelled parcels (GeoPackage)", QgsProcessing.TypeVectorPolygon))
        for status in ("labelled", "uncertain"):
            self.addOutput(QgsProcessingOutputNumber(status.upper(), f"Parcels {status}"))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        options: dict[str, Any] = {"map": inputs.layer_file(self.parameterAsRasterLayer(parameters, MAP, context))}
        if parameters.get(CONFIDENCE) not in (None, ""):
            options["confidence"] = inputs.layer_file(self.parameterAsRasterLayer(parameters, CONFIDENCE, context))
        parcels = inputs.vector_file(self, parameters, PARCELS, context, feedback)
        if parcels is None:
            raise QgsProcessingException(tr("Give the parcels to label."))
        options["parcels"] = parcels[0]
        if parcels[1]:
            options["parcels_layer"] = parcels[1]
        options.update(self.mapped_options(parameters, context, MAP_BAND, CONFIDENCE_SCALE, ID_FIELD, CLASSES,
                                           MIN_PIXELS, MIN_FRACTION, MIN_CONFIDENCE, WINDOW))
        out = self.parameterAsOutputLayer(parameters, OUTPUT, context)
        if not out.lower().endswith(".gpkg"):
            raise QgsProcessingException(tr("The labelled parcels are written as a GeoPackage: {out} must end in "
                                            ".gpkg.").format(out=repr(out)))
        options["out"] = inputs.ensure_parent(out)
        options["overwrite"] = self.parameterAsBool(parameters, OVERWRITE, context)
        return options

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        out = self._options["out"]
        if not Path(out).is_file():
            raise QgsProcessingException(tr("The backend finished but wrote no parcels ({out}).").format(out=out))
        s = self.summary()
        return {"OUTPUT": out, "LABELLED": int(s.get("labelled", 0) or 0), "UNCERTAIN": int(s.get("uncertain", 0) or 0)}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 - QGIS API (main thread)
        out = self._options.get("out", "")
        scheme = self._options.get("classes") or self._options.get("map")
        attach(context, out, ParcelsStyler(scheme), parcels_layer_name(out))
        return {}
