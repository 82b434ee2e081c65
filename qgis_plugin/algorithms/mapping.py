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
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .base import BackendAlgorithm
from .styling import ConfidenceStyler, ParcelsStyler, PredictionStyler, attach


def _model_name(model_dir: str) -> str:
    try:
        meta = json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8"))
        return f"{meta.get('task', 'model')} {meta.get('architecture', {}).get('encoder', '')}".strip()
    except (OSError, ValueError, AttributeError):
        return Path(model_dir).name


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

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(inputs.with_help(QgsProcessingParameterFile(
            "MODEL", "Model package (from Fine-tune)", behavior=QgsProcessingParameterFile.Folder),
            "A folder holding weights.safetensors and model.json."))
        inputs.raster_input_parameters(self, s2_optional=False, with_grid=False)
        self.addParameter(inputs.with_help(QgsProcessingParameterNumber(
            "TILE", "Tile size (pixels, a multiple of 32; 0: the backend's default)",
            QgsProcessingParameterNumber.Integer, 0, minValue=0, maxValue=4096),
            "Default 256 for a segmentation model; a classification model uses its chip size."))
        self.addParameter(QgsProcessingParameterNumber("OVERLAP", "Tile overlap (fraction)",
                                                       QgsProcessingParameterNumber.Double, 0.25, minValue=0.0,
                                                       maxValue=0.75))
        self.addParameter(inputs.advanced(QgsProcessingParameterString(
            "DATE", "Sentinel-2 date to read (YYYY-MM-DD; empty: the clearest in the AOI)", optional=True)))
        self.addParameter(inputs.advanced(QgsProcessingParameterNumber(
            "BATCH_SIZE", "Batch size (0: the backend's default)", QgsProcessingParameterNumber.Integer, 0,
            minValue=0, maxValue=4096)))
        inputs.device_parameter(self)
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Land-cover map"))
        self.addParameter(QgsProcessingParameterRasterDestination("CONFIDENCE", "Confidence", optional=True,
                                                                  createByDefault=True))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        model = self.parameterAsFile(parameters, "MODEL", context)
        if not model or not (Path(model) / "model.json").is_file():
            raise QgsProcessingException(tr("{model} is not an eo-ssl model package (no model.json in it).").format(
                model=repr(model)))
        options: dict[str, Any] = {"model": model}
        options.update(inputs.raster_input_options(self, parameters, context, feedback, with_grid=False))
        tile = self.parameterAsInt(parameters, "TILE", context)
        if tile > 0:
            if tile % 32:
                raise QgsProcessingException(tr("The tile size must be a multiple of 32 (got {tile}).").format(
                    tile=tile))
            options["tile"] = tile
        date = self.parameterAsString(parameters, "DATE", context).strip() if parameters.get("DATE") else ""
        if date:
            options["date"] = date
        options["overlap"] = self.parameterAsDouble(parameters, "OVERLAP", context)
        batch = self.parameterAsInt(parameters, "BATCH_SIZE", context)
        if batch > 0:
            options["batch_size"] = batch
        options["devices"] = inputs.devices(self, parameters, context)
        out = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        options["out"] = inputs.ensure_parent(out)
        conf = self.parameterAsOutputLayer(parameters, "CONFIDENCE", context) if parameters.get("CONFIDENCE") else ""
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

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(inputs.with_help(QgsProcessingParameterFile(
            "MODEL", "Encoder package (from Pre-train)", behavior=QgsProcessingParameterFile.Folder),
            "A folder holding weights.safetensors and model.json with a CNN encoder."))
        inputs.raster_input_parameters(self, s2_optional=False, with_grid=False)
        self.addParameter(inputs.with_help(QgsProcessingParameterNumber(
            "DIM", "Bands to keep (principal components; 0: every feature)", QgsProcessingParameterNumber.Integer,
            16, minValue=0, maxValue=4096), "16 components keep most of the variance of a ResNet-18 pyramid."))
        self.addParameter(QgsProcessingParameterEnum("DTYPE", "Data type", ["float32", "int16", "uint8"],
                                                     defaultValue="float32", usesStaticStrings=True))
        self.addParameter(inputs.advanced(QgsProcessingParameterString(
            "DATE", "Sentinel-2 date to embed (YYYY-MM-DD; empty: the composite of every date)", optional=True)))
        inputs.device_parameter(self)
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Embedding"))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        model = self.parameterAsFile(parameters, "MODEL", context)
        if not model or not (Path(model) / "model.json").is_file():
            raise QgsProcessingException(tr("{model} is not an eo-ssl model package (no model.json in it).").format(
                model=repr(model)))
        options: dict[str, Any] = {"model": model}
        options.update(inputs.raster_input_options(self, parameters, context, feedback, with_grid=False))
        options["dim"] = self.parameterAsInt(parameters, "DIM", context)
        options["dtype"] = self.parameterAsEnumString(parameters, "DTYPE", context) or "float32"
        date = self.parameterAsString(parameters, "DATE", context).strip() if parameters.get("DATE") else ""
        if date:
            options["date"] = date
        options["devices"] = inputs.devices(self, parameters, context)
        options["out"] = inputs.ensure_parent(self.parameterAsOutputLayer(parameters, "OUTPUT", context))
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

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterRasterLayer("MAP", "Land-cover map (class ids)"))
        self.addParameter(QgsProcessingParameterRasterLayer("CONFIDENCE", "Confidence raster (0..1)", optional=True))
        self.addParameter(inputs.with_help(QgsProcessingParameterFeatureSource(
            "PARCELS", "Parcels", [QgsProcessing.TypeVectorPolygon]),
            "Polygons in any CRS; 'Selected features only' labels just the selection."))
        self.addParameter(QgsProcessingParameterField("ID_FIELD", "Parcel id field (for messages and exports)",
                                                      parentLayerParameterName="PARCELS", optional=True))
        self.addParameter(inputs.advanced(QgsProcessingParameterFile(
            "CLASSES", "Class names (model.json, dataset.json, .qml or a JSON list; default: the map's own)",
            optional=True)))
        self.addParameter(QgsProcessingParameterNumber("MIN_PIXELS", "Minimum valid pixels",
                                                       QgsProcessingParameterNumber.Integer, 4, minValue=1))
        self.addParameter(QgsProcessingParameterNumber("MIN_FRACTION", "Minimum majority share",
                                                       QgsProcessingParameterNumber.Double, 0.5, minValue=0.0,
                                                       maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber("MIN_CONFIDENCE", "Minimum mean confidence",
                                                       QgsProcessingParameterNumber.Double, 0.5, minValue=0.0,
                                                       maxValue=1.0))
        self.addParameter(inputs.advanced(QgsProcessingParameterBoolean(
            "OVERWRITE", "Replace the output if it exists", defaultValue=True)))
        self.add_extra_args_parameter()
        self.addParameter(QgsProcessingParameterVectorDestination(
            "OUTPUT", "Labelled parcels (GeoPackage)", QgsProcessing.TypeVectorPolygon))
        for status in ("labelled", "uncertain"):
            self.addOutput(QgsProcessingOutputNumber(status.upper(), f"Parcels {status}"))

    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        options: dict[str, Any] = {"map": inputs.layer_file(self.parameterAsRasterLayer(parameters, "MAP", context))}
        if parameters.get("CONFIDENCE") not in (None, ""):
            options["confidence"] = inputs.layer_file(self.parameterAsRasterLayer(parameters, "CONFIDENCE", context))
        parcels = inputs.vector_file(self, parameters, "PARCELS", context, feedback)
        if parcels is None:
            raise QgsProcessingException(tr("Give the parcels to label."))
        options["parcels"] = parcels[0]
        if parcels[1]:
            options["parcels_layer"] = parcels[1]
        if parameters.get("ID_FIELD") not in (None, ""):
            options["id_field"] = self.parameterAsString(parameters, "ID_FIELD", context) or None
        if parameters.get("CLASSES") not in (None, ""):
            options["classes"] = self.parameterAsFile(parameters, "CLASSES", context) or None
        options["min_pixels"] = self.parameterAsInt(parameters, "MIN_PIXELS", context)
        options["min_fraction"] = self.parameterAsDouble(parameters, "MIN_FRACTION", context)
        options["min_confidence"] = self.parameterAsDouble(parameters, "MIN_CONFIDENCE", context)
        out = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        if not out.lower().endswith(".gpkg"):
            raise QgsProcessingException(tr("The labelled parcels are written as a GeoPackage: {out} must end in "
                                            ".gpkg.").format(out=repr(out)))
        options["out"] = inputs.ensure_parent(out)
        options["overwrite"] = self.parameterAsBool(parameters, "OVERWRITE", context)
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
        attach(context, out, ParcelsStyler(scheme), "Labelled parcels")
        return {}
