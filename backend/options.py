"""Every command's options, declared once: name, type, choices, default, range, help, and which are paths read
(``role="input"``) or written (``role="output"``).

The CLI builds argparse from these lists (:func:`add_arguments`) and checks the values (:func:`validate`: ranges,
finite numbers) before it imports the command's module, so a bad argument is reported at once, not after torch and
Lightning load. The lists are plain data (:class:`Option` dataclasses in :data:`COMMANDS`), so other front ends can
be generated from them (:func:`spec`: JSON-able dicts). Light imports only (the standard library and
:mod:`backend.errors`): this module is imported by ``eo-ssl COMMAND --help`` and may be read by the QGIS plugin.

The declarations and the choice lists are :mod:`backend.option_tables` (re-exported here, the one import path).

A command that is not listed here (e.g. one added by another module) keeps its module's ``add_arguments``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

from backend.errors import EoSslError
from backend.option_tables import (
    CLASSIFIERS,
    COMMANDS,
    COMPARE_PATHS,
    EMBED,
    EMBED_DTYPES,
    EVALUATE,
    EXPORT_DATASET,
    EXPORT_ONNX,
    FEATURE_INPUTS,
    FEATURE_PRESETS,
    FINETUNE,
    HEADS,
    IMPORT_WEIGHTS,
    INFERENCE_BATCH_SIZE,
    INPUTS,
    LABEL_PARCELS,
    MAX_RESOLUTION_M,
    METHODS,
    NORMALISATION_PRESETS,
    PRECISIONS,
    PREDICT,
    PREPARE,
    PRETRAIN,
    PROTOCOLS,
    SEASON,
    SEG_ARCHS,
    SIMILAR,
    SPLITS,
    TASKS,
    TRAINER,
    VARIANTS,
    Option,
)

__all__ = [
    "CLASSIFIERS",
    "COMMANDS",
    "COMPARE_PATHS",
    "EMBED",
    "EMBED_DTYPES",
    "EVALUATE",
    "EXPORT_DATASET",
    "EXPORT_ONNX",
    "FEATURE_INPUTS",
    "FEATURE_PRESETS",
    "FINETUNE",
    "HEADS",
    "IMPORT_WEIGHTS",
    "INFERENCE_BATCH_SIZE",
    "INPUTS",
    "LABEL_PARCELS",
    "MAX_RESOLUTION_M",
    "METHODS",
    "NORMALISATION_PRESETS",
    "Option",
    "PRECISIONS",
    "PREDICT",
    "PREPARE",
    "PRETRAIN",
    "PROTOCOLS",
    "SEASON",
    "SEG_ARCHS",
    "SIMILAR",
    "SPLITS",
    "TASKS",
    "TRAINER",
    "VARIANTS",
    "add_arguments",
    "parse_sets",
    "set_owners",
    "paths",
    "spec",
    "validate",
]


def inference_batch_size(given: int | None, device_type: str) -> int:
    """``--batch-size`` of predict and embed, else :data:`INFERENCE_BATCH_SIZE` of the device type."""
    return given or INFERENCE_BATCH_SIZE["cuda" if device_type == "cuda" else "cpu"]


# -- argparse ---------------------------------------------------------------------------------------------------------
_TYPES = {"str": str, "int": int, "float": float}


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Add ``command``'s options to ``parser`` (grouped as declared)."""
    groups: dict[str | None, Any] = {None: parser}
    for o in COMMANDS[command]:
        if o.group not in groups:
            groups[o.group] = parser.add_argument_group(o.group)
        target = groups[o.group]
        kw: dict[str, Any] = {"help": o.help}
        if o.type == "flag":
            kw["action"] = "store_true"
        else:
            kw.update(type=_TYPES[o.type], default=o.default)
            for key in ("choices", "nargs", "metavar", "action"):
                if getattr(o, key) is not None:
                    kw[key] = getattr(o, key)
            if o.action in ("append", "extend") and isinstance(o.default, list):
                kw["default"] = list(o.default)  # never share the declared list between parses
        if o.required and not o.positional:
            kw["required"] = True
        if o.aliases:
            kw["dest"] = o.dest
        target.add_argument(o.name, *o.aliases, **kw)


def validate(command: str, args: argparse.Namespace) -> None:
    """Check every value of ``command``'s options against its declared range (before any heavy import)."""
    for o in COMMANDS.get(command, []):
        value = getattr(args, o.dest, None)
        for v in value if isinstance(value, list) else [value]:
            o.check(v)


def paths(command: str, args: argparse.Namespace, role: str) -> list[tuple[str, str]]:
    """(option, path) of every value of ``command``'s options with ``role`` (``input`` or ``output``)."""
    out: list[tuple[str, str]] = []
    for o in COMMANDS.get(command, []):
        if o.role != role:
            continue
        value = getattr(args, o.dest, None)
        for v in value if isinstance(value, list) else [value]:
            if v not in (None, ""):
                out.append((o.name, str(v)))
    return out


def spec(command: str | None = None) -> dict[str, Any]:
    """The options as JSON-able dicts (all commands, or one): for generating other front ends."""
    names = [command] if command else list(COMMANDS)
    return {n: [{"dest": o.dest, **{k: v for k, v in dataclasses.asdict(o).items()
                                    if (v is not None and v is not False) or k == "default"}}
                for o in COMMANDS[n]] for n in names}


# -- --set KEY=VALUE ------------------------------------------------------------------------------------------------
def set_owners(command: str, keys: Iterable[str], **renamed: str) -> dict[str, str]:
    """The ``--set`` keys of ``keys`` that a named option of ``command`` sets: key -> that option (an option whose
    dest is the key, e.g. ``batch_size`` -> ``--batch-size``; ``renamed``: key -> option for the others, e.g.
    ``momentum="--ema"``)."""
    named = {o.dest: o.name for o in COMMANDS[command]}
    keys = set(keys)
    return {k: v for k, v in {**named, **renamed}.items() if k in keys}


def parse_sets(items: Iterable[str], known: Sequence[str] | None = None, what: str = "the method",
               owners: dict[str, str] | None = None) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as a dict (VALUE read as JSON when it parses); a KEY not in ``known`` is refused
    with the list of valid ones, a KEY a named option sets (``owners``: key -> option, :func:`set_owners`) with that
    option (else one of the two would be silently overwritten by the other)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise EoSslError("bad_argument", f"--set {item!r} is not KEY=VALUE.", "Write e.g. --set queue_size=4096.")
        key, value = (t.strip() for t in item.split("=", 1))
        if owners and key in owners:
            raise EoSslError("bad_argument", f"--set {key}={value}: {key} is set by the option {owners[key]}.",
                             f"Use {owners[key]} {value} instead of --set.")
        if known is not None and key not in known:
            raise EoSslError("bad_argument", f"--set {key}: {what} has no option {key!r}.",
                             f"Options: {', '.join(sorted(set(known)))}.")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
