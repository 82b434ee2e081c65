"""The backend's options as the plugin reads them: defaults, ranges and choice lists come from here, never from
literals in the algorithms or the dialog.

The one declaration is :mod:`backend.options` (the CLI's argparse is built from it). The plugin never imports the
backend, so ``scripts/generate_option_spec.py`` writes it as ``backend_options.json`` next to this module (shipped in
the plugin zip; a test fails while the committed file differs from a fresh one). The file also holds what the
backend uses when an option is not given and the value depends on the command (``command_defaults``) or on the
pre-training method (``methods``): a parameter left empty sends nothing, so the backend's own default applies.

:func:`number` and :func:`enum` build Processing parameters from an option (the contract test in
``tests/plugin/test_option_contract.py`` checks every mapped parameter against the spec).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SPEC_FILE = Path(__file__).resolve().with_name("backend_options.json")
#: the Processing enum value meaning "not set: the backend chooses" (for an option whose default is None)
AUTO = "auto"


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return json.loads(SPEC_FILE.read_text(encoding="utf-8"))


def option(command: str, name: str) -> dict[str, Any]:
    """The spec of ``command``'s option ``name`` (``--crop``)."""
    for opt in spec()["commands"][command]:
        if opt["name"] == name:
            return opt
    raise KeyError(f"{command} has no option {name}")


def default(command: str, name: str) -> Any:
    """The value the backend uses when ``name`` is not given, where it depends on nothing but the command (None: it
    depends on the data, the model or the method)."""
    value = option(command, name)["default"]
    if value is None:
        value = spec()["command_defaults"].get(command, {}).get(option(command, name)["dest"])
    return value


def input_default(key: str) -> Any:
    """A default the backend takes from the input (``input_defaults``: the encoder of a random initialisation, the
    frozen share from a package, a segmentation model's tile), for the labels that say it."""
    return spec()["input_defaults"][key]


def choices(command: str, name: str) -> list[str]:
    """The option's choices, else the usual values a front end offers (``--precision``)."""
    opt = option(command, name)
    return list(opt.get("choices") or opt.get("values") or [])


def lists(name: str) -> list[str]:
    """A choice list of :mod:`backend.options` by name (``methods``, ``variants``, ``seg_archs``...)."""
    return list(spec()["lists"][name])


def method_default(method: str, dest: str) -> Any:
    """A pre-training method's default for an option (``batch_size``, ``encoder``, ``lr``...)."""
    return spec()["methods"].get(method, {}).get(dest)


def method_defaults_text(dest: str) -> str:
    """``32 (rs-byol), 128 (byol, moco-v2, ...)``: the methods' defaults of one option, for labels."""
    by_value: dict[Any, list[str]] = {}
    for method, values in spec()["methods"].items():
        if dest in values:
            by_value.setdefault(values[dest], []).append(method)
    return ", ".join(f"{value:g} ({', '.join(methods)})" if isinstance(value, float) else
                     f"{value} ({', '.join(methods)})" for value, methods in by_value.items())


def device_defaults_text(command: str, dest: str) -> str:
    """``4 on the CPU, 32 on a GPU``: what ``command`` uses for an option not given, by device, for labels."""
    from .i18n import tr

    values = spec()["by_device"][command][dest]
    return tr("{cpu} on the CPU, {cuda} on a GPU").format(cpu=values["cpu"], cuda=values["cuda"])


def number(name: str, description: str, command: str, cli: str, optional: bool = False):
    """A ``QgsProcessingParameterNumber`` for ``command``'s option ``cli``: its type, default and range. An option
    whose default is None (the backend decides) gives an optional parameter without default: left empty, nothing
    is sent."""
    from qgis.core import QgsProcessingParameterNumber

    opt = option(command, cli)
    kind = QgsProcessingParameterNumber.Integer if opt["type"] == "int" else QgsProcessingParameterNumber.Double
    value = default(command, cli)
    kw: dict[str, Any] = {}
    if opt.get("minimum") is not None:
        kw["minValue"] = opt["minimum"]
    if opt.get("maximum") is not None:
        kw["maxValue"] = opt["maximum"]
    return QgsProcessingParameterNumber(name, description, kind, value, optional or value is None, **kw)


def enum(name: str, description: str, command: str, cli: str, exclude: tuple[str, ...] = ()):
    """A ``QgsProcessingParameterEnum`` (static strings) of the option's choices, less ``exclude``; an option whose
    default is None gets ``auto`` first (nothing is sent: the backend chooses), a required one the first choice."""
    from qgis.core import QgsProcessingParameterEnum

    values = [c for c in choices(command, cli) if c not in exclude]
    value = default(command, cli)
    if value is None and option(command, cli).get("required"):
        value = values[0]  # a required option: the first choice
    elif value is None:
        values, value = [AUTO, *values], AUTO
    return QgsProcessingParameterEnum(name, description, values, defaultValue=value, usesStaticStrings=True)
