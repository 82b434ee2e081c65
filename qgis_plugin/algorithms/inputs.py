"""Parameters shared by the algorithms that read rasters (prepare, predict, export-dataset) and their
conversion into the backend's input options (``--s2``, ``--s1``, ``--aoi``/``--bbox``, ``--poi``, ...).

Everything here runs on the main thread (``prepareAlgorithm``): layers are read there, and a vector input with
"selected features only" (or one that is not a file, e.g. a memory layer) is written to a temporary GeoPackage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsMapLayerType,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterString,
    QgsProviderRegistry,
)
from qgis.PyQt.QtCore import Qt

from .. import backend_spec, settings
from ..i18n import tr

S2 = "S2"
S2_FOLDER = "S2_FOLDER"
S2_BANDS = "S2_BANDS"
S1 = "S1"
S1_FOLDER = "S1_FOLDER"
S1_BANDS = "S1_BANDS"
AOI = "AOI"
EXTENT = "EXTENT"
POI_START = "POI_START"
POI_END = "POI_END"
CRS = "CRS"
RESOLUTION = "RESOLUTION"

#: the backend options the shared input parameters set (BackendAlgorithm.OPTIONS)
INPUT_OPTIONS: dict[str, tuple[str, ...]] = {
    S2: ("--s2",), S2_FOLDER: ("--s2",), S2_BANDS: ("--s2-bands",), S1: ("--s1",), S1_FOLDER: ("--s1",),
    S1_BANDS: ("--s1-bands",), AOI: ("--aoi", "--aoi-layer"), EXTENT: ("--bbox", "--bbox-crs"), POI_START: ("--poi",),
    POI_END: ("--poi",)}
GRID_OPTIONS: dict[str, tuple[str, ...]] = {CRS: ("--crs",), RESOLUTION: ("--resolution",)}
#: why an algorithm without the grid parameters leaves them to the command line
GRID_CLI_ONLY = {"--crs": "a map or an embedding is made on the grid of the model's training (its resolution, the "
                          "scene's CRS)",
                 "--resolution": "the model's resolution (model.json) is the right one for its inputs"}

FEATURES = "FEATURES"
FEATURES_PRESET = "FEATURES_PRESET"
#: feature rasters (an embedding) beside or instead of the scenes: prepare, predict
FEATURE_OPTIONS: dict[str, tuple[str, ...]] = {FEATURES: ("--features",), FEATURES_PRESET: ("--features-preset",)}

#: Vector formats the backend (OGR through pyogrio) reads directly; anything else is exported to a GeoPackage.
VECTOR_FORMATS = ["gpkg", "shp", "geojson", "json", "fgb", "gml", "kml", "sqlite", "tab", "csv"]


def advanced(param: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return param


def with_help(param: QgsProcessingParameterDefinition, text: str) -> QgsProcessingParameterDefinition:
    if hasattr(param, "setHelp"):  # QGIS >= 3.16
        param.setHelp(text)
    return param


def raster_input_parameters(alg, s2_optional: bool = True, with_grid: bool = True) -> None:
    """S2/S1 layers (or folders), band names, AOI (polygons, selected-only aware) or extent, POI, grid."""
    alg.addParameter(with_help(QgsProcessingParameterMultipleLayers(
        S2, "Sentinel-2 scenes (raster layers: multi-band files, or one layer per band)", QgsProcessing.TypeRaster,
        optional=s2_optional), "One or more Sentinel-2 rasters. Dated files of a time series, a multi-band file, "
        "or one file per band (e.g. T33UUU_..._B02.jp2). Band names come from the band descriptions or the file "
        "names; give 'Sentinel-2 band names' when neither names them."))
    alg.addParameter(advanced(QgsProcessingParameterFile(
        S2_FOLDER, "Sentinel-2 folder (instead of, or in addition to, the layers)",
        behavior=QgsProcessingParameterFile.Folder, optional=True)))
    alg.addParameter(advanced(QgsProcessingParameterString(
        S2_BANDS, "Sentinel-2 band names in file order (e.g. B02,B03,B04,B08), when the files do not name them",
        optional=True)))
    alg.addParameter(with_help(QgsProcessingParameterMultipleLayers(
        S1, "Sentinel-1 scenes (VV/VH rasters, dB or linear)", QgsProcessing.TypeRaster, optional=True),
        "Optional. Two-band VV,VH files or one file per polarisation; reprojected onto the Sentinel-2 grid."))
    alg.addParameter(advanced(QgsProcessingParameterFile(
        S1_FOLDER, "Sentinel-1 folder", behavior=QgsProcessingParameterFile.Folder, optional=True)))
    alg.addParameter(advanced(QgsProcessingParameterString(
        S1_BANDS, "Sentinel-1 polarisations in file order (e.g. VV,VH)", optional=True)))
    alg.addParameter(with_help(QgsProcessingParameterFeatureSource(
        AOI, "Area of interest (polygons)", [QgsProcessing.TypeVectorPolygon], optional=True),
        "Polygons of any CRS; 'Selected features only' uses just the selection. Leave empty to use the extent "
        "below, or the whole Sentinel-2 footprint."))
    alg.addParameter(QgsProcessingParameterExtent(EXTENT, "Area of interest as an extent (instead of polygons)",
                                                  optional=True))
    alg.addParameter(QgsProcessingParameterDateTime(
        POI_START, "Period of interest: first date", QgsProcessingParameterDateTime.Date, optional=True))
    alg.addParameter(QgsProcessingParameterDateTime(
        POI_END, "Period of interest: last date", QgsProcessingParameterDateTime.Date, optional=True))
    if with_grid:
        alg.addParameter(advanced(QgsProcessingParameterCrs(
            CRS, "CRS of the analysis grid (default: the Sentinel-2 CRS, or the UTM zone of the AOI)",
            optional=True)))
        alg.addParameter(advanced(backend_spec.number(RESOLUTION, "Grid resolution (metres)", alg.COMMAND,
                                                      "--resolution")))


def feature_input_parameters(alg) -> None:
    """Feature raster layers (an embedding: AlphaEarth, TESSERA, eo-ssl embed, ...) and how they are encoded."""
    alg.addParameter(with_help(QgsProcessingParameterMultipleLayers(
        FEATURES, "Feature rasters (an embedding: AlphaEarth, TESSERA, eo-ssl Embed, any multi-band raster)",
        QgsProcessing.TypeRaster, optional=True),
        "Optional. Per-pixel feature rasters (tiles of one product), read onto the grid like Sentinel-1, beside "
        "the Sentinel-2 scenes or alone. AlphaEarth (64 int8 bands) and TESSERA (128 int8 bands with "
        "NAME_scales.tif) are recognised and de-quantised; other rasters are read with their scale/offset."))
    preset = backend_spec.enum(FEATURES_PRESET, "Feature raster encoding", alg.COMMAND, "--features-preset")
    preset.setFlags(preset.flags() | QgsProcessingParameterDefinition.FlagOptional)  # models made before it validate
    alg.addParameter(advanced(preset))


def feature_input_options(alg, parameters, context) -> dict[str, Any]:
    """``--features`` (the layers' files) and ``--features-preset`` (unless auto)."""
    files = raster_files(alg, parameters, FEATURES, context)
    if not files:
        return {}
    return {"features": files, **alg.mapped_options(parameters, context, FEATURES_PRESET)}


def has_features(parameters) -> bool:
    return parameters.get(FEATURES) not in (None, "", [])


DEVICES = "DEVICES"


def device_parameter(alg) -> None:
    alg.addParameter(with_help(QgsProcessingParameterString(
        DEVICES, "Devices (auto, cpu, or the number of GPUs)", defaultValue="auto"),
        "auto: the default device of Settings > Options… > eo-ssl (itself 'auto' unless changed there: the GPU "
        "when the backend finds one, else the CPU; see Raster > eo-ssl > Backend diagnostics)."))


def devices(alg, parameters, context) -> str:
    """The run's --devices: the parameter, with 'auto' meaning the default device of the plugin's settings."""
    value = alg.parameterAsString(parameters, DEVICES, context) if parameters.get(DEVICES) not in (None, "") else ""
    return settings.resolve_device(value)


def layer_file(layer) -> str:
    """The file behind a raster layer (GDAL provider), for the backend."""
    if layer is None:
        raise QgsProcessingException(tr("A raster input could not be loaded."))
    if layer.type() != QgsMapLayerType.RasterLayer or layer.providerType() != "gdal":
        raise QgsProcessingException(tr(
            "Layer '{layer}' is not a raster file (provider {provider}): eo-ssl reads Sentinel scenes from files "
            "(GeoTIFF, JP2, ...). Save it as a GeoTIFF first (Raster > Conversion > Translate).").format(
                layer=layer.name(), provider=layer.providerType()))
    parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
    path = parts.get("path") or layer.source()
    return str(path)


def raster_files(alg, parameters, name: str, context) -> list[str]:
    if parameters.get(name) in (None, "", []):
        return []
    layers = alg.parameterAsLayerList(parameters, name, context)
    files = []
    for layer in layers:
        path = layer_file(layer)
        if path not in files:
            files.append(path)
    return files


def vector_file(alg, parameters, name: str, context, feedback) -> tuple[str, str | None] | None:
    """(path, layer name) of a feature-source parameter as a file the backend can read. A file layer with no
    selection/filter is passed as is; a selection ("selected features only"), a subset or a non-file layer is
    written to a temporary GeoPackage first."""
    value = parameters.get(name)
    if value in (None, ""):
        return None
    source = alg.parameterAsSource(parameters, name, context)
    if source is None:
        return None
    path, layer_name = alg.parameterAsCompatibleSourceLayerPathAndLayerName(
        parameters, name, context, VECTOR_FORMATS, "gpkg", feedback)
    if not path:
        raise QgsProcessingException(tr("Could not write the '{name}' features to a file for the backend.").format(
            name=name))
    if "|" in path:  # some providers keep their options in the path
        path, _, rest = path.partition("|")
        if not layer_name and rest.startswith("layername="):
            layer_name = rest.split("=", 1)[1].split("|")[0]
    return path, (layer_name or None)


def date_string(alg, parameters, name: str, context) -> str:
    if parameters.get(name) in (None, ""):
        return ""
    value = alg.parameterAsDateTime(parameters, name, context)
    if value is None or not value.isValid():
        return ""
    return value.date().toString(Qt.DateFormat.ISODate)


def poi_string(alg, parameters, context) -> str | None:
    start = date_string(alg, parameters, POI_START, context)
    end = date_string(alg, parameters, POI_END, context)
    if not start and not end:
        return None
    return f"{start}/{end}"


def crs_string(crs) -> str:
    return crs.authid() if crs.authid() else crs.toWkt()


def raster_input_options(alg, parameters, context, feedback, s2_required: bool = True,
                         with_grid: bool = True) -> dict[str, Any]:
    """The backend options for the shared inputs."""
    s2 = raster_files(alg, parameters, S2, context)
    folder = alg.parameterAsFile(parameters, S2_FOLDER, context) if parameters.get(S2_FOLDER) else ""
    if folder:
        s2.append(folder)
    if s2_required and not s2:
        raise QgsProcessingException(tr("Give at least one Sentinel-2 layer (or a Sentinel-2 folder)."))
    s1 = raster_files(alg, parameters, S1, context)
    folder1 = alg.parameterAsFile(parameters, S1_FOLDER, context) if parameters.get(S1_FOLDER) else ""
    if folder1:
        s1.append(folder1)
    options: dict[str, Any] = {"s2": s2 or None, "s1": s1 or None}
    s2_bands = alg.parameterAsString(parameters, S2_BANDS, context).strip()
    s1_bands = alg.parameterAsString(parameters, S1_BANDS, context).strip()
    if s2_bands:
        options["s2_bands"] = s2_bands.replace(" ", "")
    if s1_bands and s1:
        options["s1_bands"] = s1_bands.replace(" ", "")
    aoi = vector_file(alg, parameters, AOI, context, feedback)
    has_extent = parameters.get(EXTENT) not in (None, "")
    if aoi and has_extent:
        raise QgsProcessingException(tr("Give the area of interest as polygons or as an extent, not both."))
    if aoi:
        options["aoi"] = aoi[0]
        if aoi[1]:
            options["aoi_layer"] = aoi[1]
    elif has_extent:
        extent = alg.parameterAsExtent(parameters, EXTENT, context)
        crs = alg.parameterAsExtentCrs(parameters, EXTENT, context)
        if extent.isNull() or extent.isEmpty():
            raise QgsProcessingException(tr("The area-of-interest extent is empty."))
        options["bbox"] = ",".join(repr(v) for v in (extent.xMinimum(), extent.yMinimum(),
                                                       extent.xMaximum(), extent.yMaximum()))
        if crs.isValid():
            options["bbox_crs"] = crs_string(crs)
    poi = poi_string(alg, parameters, context)
    if poi:
        options["poi"] = poi
    if with_grid:
        if parameters.get(CRS) not in (None, ""):
            crs = alg.parameterAsCrs(parameters, CRS, context)
            if crs.isValid():
                options["crs"] = crs_string(crs)
        options.update(alg.mapped_options(parameters, context, RESOLUTION))
    return options


def folder_output(alg, parameters, name: str, context) -> str:
    """A folder destination as an absolute path (its parent is created)."""
    path = alg.parameterAsFileOutput(parameters, name, context)
    if not path:
        raise QgsProcessingException(tr("No output folder given for {name}.").format(name=name))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return str(Path(path))


def ensure_parent(path: str) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return path
