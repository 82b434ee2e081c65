"""What the three training algorithms (Pre-train, Fine-tune, Evaluate) declare alike: the chip store they read, the
precision, the season calendar of the pixel classifiers, the optional text parameters, and the model package
Pre-train and Fine-tune write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterFile,
    QgsProcessingParameterString,
)

from .. import backend_spec as spec
from ..i18n import tr
from . import inputs
from .base import BackendAlgorithm
from .inputs import advanced, with_help
from .parameters import BANDS, DATA, OUTPUT, OVERWRITE, PERIOD, PRECISION, RESUME, SEASON


def precision_parameter(alg, command: str) -> None:
    alg.addParameter(advanced(spec.enum(PRECISION, "Precision", command, "--precision")))


def data_parameter(alg) -> None:
    alg.addParameter(with_help(QgsProcessingParameterFile(
        DATA, "Chip store (output of Prepare data)", behavior=QgsProcessingParameterFile.Folder),
        "A folder written by 'Prepare data' (it holds manifest.json)."))


def check_data(alg, parameters, context) -> str:
    data = alg.parameterAsFile(parameters, DATA, context)
    if not data or not Path(data).is_dir():
        raise QgsProcessingException(tr("The chip store {data} is not a folder: run '1 Prepare data' first.").format(
            data=repr(data)))
    return data


def season_parameters(alg: BackendAlgorithm, command: str) -> None:
    """How the pixel classifiers read a time series: the season calendar (``--period``, ``--season``, ``--bands``)."""
    alg.addParameter(advanced(with_help(spec.enum(PERIOD, "Time series read on (pixel model)", command, "--period"),
        "month: monthly composites of the season (a model that maps other dates, places and years); 10d: 10-day "
        "composites; dates: the acquisition dates themselves (the model maps only those dates).")))
    alg.addParameter(optional_string(SEASON, "Season (pixel model; MM-DD/MM-DD, empty: the chip store's period "
                                             "of interest)"))
    alg.addParameter(optional_string(BANDS, "Bands to train on (pixel model; comma-separated, empty: all)"))


def optional_string(name: str, description: str, advanced_: bool = True) -> QgsProcessingParameterString:
    param = QgsProcessingParameterString(name, description, optional=True)
    return advanced(param) if advanced_ else param


def package_options(alg, parameters, context) -> dict[str, Any]:
    """Where and how a training writes its model package: the devices, the output folder, and ``overwrite``
    (never with Resume, which continues the package's checkpoint)."""
    resume = alg.parameterAsBool(parameters, RESUME, context)
    return {"devices": inputs.devices(alg, parameters, context),
            "overwrite": alg.parameterAsBool(parameters, OVERWRITE, context) and not resume,
            "out": inputs.folder_output(alg, parameters, OUTPUT, context)}


def written_package(alg) -> Path:
    """The model package the backend wrote; raises when it holds no model.json."""
    out = Path(alg._options["out"])
    if not (out / "model.json").is_file():
        raise QgsProcessingException(tr("The backend finished but {out} holds no model.json.").format(out=out))
    return out
