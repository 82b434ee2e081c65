"""6 Label parcels."""

from __future__ import annotations

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
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .. import backend_spec as spec
from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from . import inputs
from .base import BackendAlgorithm
from .inputs import advanced, with_help
from .parameters import (
    CLASSES,
    CONFIDENCE,
    CONFIDENCE_SCALE,
    ID_FIELD,
    MAP,
    MAP_BAND,
    MIN_CONFIDENCE,
    MIN_FRACTION,
    MIN_PIXELS,
    OUTPUT,
    OVERWRITE,
    OWN_OVERWRITE,
    PARCELS,
    WINDOW,
    same_options,
)
from .styling import ParcelsStyler, attach


def parcels_layer_name(out: str) -> str:
    """The labelled parcels' layer name, with the file's name: two outputs of a batch are told apart."""
    stem = Path(out).stem if out else ""
    return tr("Labelled parcels ({name})").format(name=stem) if stem else tr("Labelled parcels")



class LabelParcelsAlgorithm(BackendAlgorithm):
    COMMAND = "label-parcels"
    DISPLAY = QT_TRANSLATE_NOOP("@default", "6 Label parcels")
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
               **same_options(MAP_BAND, CONFIDENCE_SCALE, ID_FIELD, CLASSES, MIN_PIXELS, MIN_FRACTION,
                              MIN_CONFIDENCE, WINDOW, OVERWRITE),
               OUTPUT: ("--out",)}
    OWN_DEFAULTS = OWN_OVERWRITE

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
