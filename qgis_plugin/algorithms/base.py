"""What every eo-ssl Processing algorithm shares (:class:`BackendAlgorithm`): its identity, resolving its
parameters into backend options (on the main thread, in ``prepareAlgorithm``), the further backend options, and
running the command (:mod:`.backend_run`, in ``processAlgorithm``).
"""

from __future__ import annotations

import shlex
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtGui import QIcon

from .. import backend_spec
from ..backend_runner import options_to_args
from ..backend_spec import AUTO
from ..i18n import tr
from ..names import QT_TRANSLATE_NOOP
from ..paths import ICON
from . import backend_run
from .backend_run import backend_python_or_raise

__all__ = ["EXTRA_ARGS", "TRAINER_CLI_ONLY", "BackendAlgorithm"]

EXTRA_ARGS = "EXTRA_ARGS"

HELP_FOOTER = QT_TRANSLATE_NOOP(
    "@default",
    "<p><i>eo-ssl runs this step in its own Python process (the backend; see Raster &gt; eo-ssl &gt; Backend "
    "diagnostics), so QGIS never loads PyTorch. The exact command line is shown at the top of the log: the same "
    "command works in a terminal (<code>python -m backend ...</code>).</i></p>")



#: The Toolbox groups (GROUP_ID -> name), numbered in the order of the workflow.
GROUPS = {"data": QT_TRANSLATE_NOOP("@default", "1 Data"), "training": QT_TRANSLATE_NOOP("@default", "2 Training"),
          "mapping": QT_TRANSLATE_NOOP("@default", "3 Mapping"), "parcels": QT_TRANSLATE_NOOP("@default", "4 Parcels")}

#: The training options every training algorithm leaves to the command line, and why.
TRAINER_CLI_ONLY = {
    "--num-nodes": "multi-machine DDP is started from a terminal (torchrun on each machine), not from QGIS",
    "--strategy": "a DDP strategy matters with several devices only, where 'auto' (ddp) is right",
    "--num-workers": "chosen from the device (Further backend options overrides it)",
    "--threads": "tuning for machines shared with other work (Further backend options)",
}


class BackendAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses define the parameters, :meth:`backend_options` (main thread) and
    :meth:`results` (after the backend succeeded).

    The contract with the backend (``tests/plugin/test_option_contract.py``): :attr:`OPTIONS` maps each parameter to
    the backend options it sets (the first one is the option whose default, range and choices the parameter
    mirrors, taken from :mod:`..backend_spec`); :attr:`CLI_ONLY` lists the command's options the algorithm does not
    offer, each with why; :attr:`OWN_DEFAULTS` the parameters whose default differs from the backend's on purpose
    and :attr:`LEFT_OUT` the backend choices an enum leaves out, each with why."""

    COMMAND = ""
    NAME = ""  # the algorithm's id in the provider: the command's name (``label-parcels`` -> ``label_parcels``)
    DISPLAY = ""
    GROUP_ID = ""  # a key of GROUPS
    HELP = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.NAME = cls.COMMAND.replace("-", "_")
    OPTIONS: dict[str, tuple[str, ...]] = {}
    CLI_ONLY: dict[str, str] = {}
    OWN_DEFAULTS: dict[str, str] = {}
    LEFT_OUT: dict[str, dict[str, str]] = {}

    def __init__(self) -> None:
        super().__init__()
        self._options: dict[str, Any] = {}
        self._python: str | None = None
        self._final: dict[str, Any] = {}
        self._events: list[dict[str, Any]] = []
        self._extra: list[str] = []
        self._prepare_error: QgsProcessingException | None = None
        self._to_load: list[tuple[str, QgsProcessingContext.LayerDetails]] = []

    # -- identity ----------------------------------------------------------------------------------------------
    def tr(self, text: str) -> str:
        return tr(text)

    def createInstance(self):  # noqa: N802 - QGIS API
        return type(self)()

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(self.DISPLAY)

    def group(self) -> str:
        return self.tr(GROUPS[self.GROUP_ID])

    def groupId(self) -> str:  # noqa: N802 - QGIS API
        return self.GROUP_ID

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(self.HELP) + self.tr(HELP_FOOTER)

    def shortDescription(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(self.HELP.split("</p>")[0].replace("<p>", ""))

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:  # noqa: N802 - QGIS API
        return str(ICON)

    # -- running -----------------------------------------------------------------------------------------------
    def prepareAlgorithm(self, parameters, context: QgsProcessingContext, feedback) -> bool:  # noqa: N802
        # A bad input found here is raised again by processAlgorithm: QGIS swallows exceptions of prepare into a
        # generic "errors executing the algorithm", while one from processAlgorithm reaches processing.run callers.
        self._prepare_error = None
        before = set(context.layersToLoadOnCompletion())
        try:
            self._python = backend_python_or_raise()
            self._options = self.backend_options(parameters, context, feedback)
            self._extra = self.extra_args(parameters, context)
        except QgsProcessingException as exc:
            self._prepare_error = exc
        # Outputs to load (destination parameters read above): remembered, because a run in a worker thread uses a
        # fresh context whose list of layers to load replaces the one prepared here (QgsProcessingContext::
        # takeResultsFrom); processAlgorithm registers them again in the context it is given.
        self._to_load = [(path, context.layerToLoadOnCompletionDetails(path))
                         for path in context.layersToLoadOnCompletion() if path not in before]
        self._to_load = [(path, QgsProcessingContext.LayerDetails(d.name, d.project, d.outputName, d.layerTypeHint))
                         for path, d in self._to_load]
        return True

    def processAlgorithm(self, parameters, context: QgsProcessingContext, feedback):  # noqa: N802 - QGIS API
        if self._prepare_error is not None:
            raise self._prepare_error
        for path, details in self._to_load:
            if not context.willLoadLayerOnCompletion(path):
                context.addLayerToLoadOnCompletion(path, details)
        assert self._python is not None
        args = options_to_args(self._options) + self._extra
        self._final, self._events = backend_run.run_backend(self.COMMAND, args, self._python, feedback)
        return self.results(parameters, context, feedback)

    def add_extra_args_parameter(self) -> None:
        param = QgsProcessingParameterString(
            EXTRA_ARGS, "Further backend options (advanced: those no parameter here sets)", optional=True)
        param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        param.setHelp("Passed to the backend command as extra arguments (split like a shell would, but never run "
                      "by a shell). See `python -m backend <command> --help`. An option a parameter of this algorithm "
                      "sets is refused: set it in that parameter.")
        self.addParameter(param)

    def extra_args(self, parameters, context) -> list[str]:
        """The further backend options, split as a shell would. An option that a parameter of this algorithm sets
        (``--batch-size`` beside *Batch size*) is refused, naming that parameter: typed after the parameters, it
        would silently win over what the field shows."""
        if parameters.get(EXTRA_ARGS) in (None, "") or self.parameterDefinition(EXTRA_ARGS) is None:
            return []
        text = self.parameterAsString(parameters, EXTRA_ARGS, context).strip()
        try:
            args = shlex.split(text)
        except ValueError as exc:
            raise QgsProcessingException(tr("Cannot read the further backend options {text}: {error}").format(
                text=repr(text), error=exc)) from exc
        repeated = self.repeated_options(args)
        if repeated:
            typed, option, names = repeated[0]
            parameters_ = tr(" or ").join(f"'{self.parameterDefinition(n).description()}'" for n in names)
            raise QgsProcessingException(tr(
                "The further backend options repeat {option}, which the parameter {parameter} sets: set it there "
                "and remove {typed} from the further backend options.").format(
                option=option, parameter=parameters_, typed=typed))
        return args

    def repeated_options(self, args: list[str]) -> list[tuple[str, str, list[str]]]:
        """(option as typed, its name, the parameters that set it) for each option of ``args`` a parameter sets. An
        option is recognised as the backend's parser reads it: its name, an alias, ``--name=value``, or an
        unambiguous prefix (argparse's abbreviations)."""
        owner: dict[str, list[str]] = {}
        for name, options in self.OPTIONS.items():
            for option in options:
                owner.setdefault(option, []).append(name)
        known: dict[str, str] = {}  # every spelling of the command's options -> the option's name
        for opt in backend_spec.spec()["commands"].get(self.COMMAND, []):
            for spelling in (opt["name"], *opt.get("aliases", [])):
                known[spelling] = opt["name"]
        repeated = []
        for arg in args:
            if not arg.startswith("--"):
                continue
            typed = arg.split("=", 1)[0]
            option = known.get(typed)
            if option is None:
                matches = {name for spelling, name in known.items() if spelling.startswith(typed)}
                option = matches.pop() if len(matches) == 1 else None
            if option in owner:
                repeated.append((typed, option, owner[option]))
        return repeated

    def checkParameterValues(self, parameters, context):  # noqa: N802 - QGIS API
        try:
            self.extra_args(parameters, context)
        except QgsProcessingException as exc:
            return False, str(exc)
        return super().checkParameterValues(parameters, context)

    def mapped_options(self, parameters, context, *names: str) -> dict[str, Any]:
        """The backend options of parameters that set one option each (:attr:`OPTIONS`), as given: nothing for an
        empty parameter or ``auto`` (the backend's default applies), a flag for a checkbox."""
        options: dict[str, Any] = {}
        for name in names:
            definition = self.parameterDefinition(name)
            if parameters.get(name, definition.defaultValue()) in (None, ""):
                continue
            dest = self.OPTIONS[name][0].lstrip("-").replace("-", "_")
            if isinstance(definition, QgsProcessingParameterNumber):
                integer = definition.dataType() == QgsProcessingParameterNumber.Integer
                value: Any = (self.parameterAsInt if integer else self.parameterAsDouble)(parameters, name, context)
            elif isinstance(definition, QgsProcessingParameterEnum):
                value = self.parameterAsEnumString(parameters, name, context)
                if value in ("", AUTO):
                    continue
            elif isinstance(definition, QgsProcessingParameterBoolean):
                value = self.parameterAsBool(parameters, name, context)
            else:
                value = self.parameterAsString(parameters, name, context).strip()
                if not value:
                    continue
            options[dest] = value
        return options

    # -- for subclasses ----------------------------------------------------------------------------------------
    def backend_options(self, parameters, context, feedback) -> dict[str, Any]:
        raise NotImplementedError

    def results(self, parameters, context, feedback) -> dict[str, Any]:
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        return dict(self._final.get("summary") or {})
