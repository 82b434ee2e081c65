"""The chain of provenance of a model package: every step that made its weights, oldest first.

``model.json`` ``provenance.chain`` is a list of steps, e.g. ``import`` (a published file and its SHA-256) ->
``pretrain`` (method, stores) -> ``finetune`` (task, store). A command that starts from a package copies that
package's chain and appends its own step, with the SHA-256 of the weights it started from, so the line from a map
back to the published file (or to random weights) can be read off any package. Packages written before chains
existed get one step made from their own ``model.json``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any


def chain_of(meta: dict[str, Any] | None, path: str | Path | None = None) -> list[dict[str, Any]]:
    """The steps that made the package described by ``meta`` (found at ``path``)."""
    if meta is None:
        return []
    prov = meta.get("provenance") or {}
    steps = prov.get("chain")
    if isinstance(steps, list) and steps:
        return [dict(s) for s in steps]
    # an older package: its own step, from what its model.json says
    step: dict[str, Any] = {"step": meta.get("task") or "unknown", "method": meta.get("method"),
                            "created": meta.get("created"), "data": prov.get("data")}
    if path is not None:
        step["package"] = str(Path(path).resolve())
    return [step]


def step(kind: str, **fields: Any) -> dict[str, Any]:
    """One step: what was done (``kind``), when, and its details (``None`` values dropped)."""
    return {"step": kind, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **{k: v for k, v in fields.items() if v is not None}}


def extend(init_meta: dict[str, Any] | None, init_path: str | Path | None, new: dict[str, Any]) -> list[dict[str, Any]]:
    """The chain of a package made from ``init_meta`` (None: from random weights) by the step ``new``."""
    return [*chain_of(init_meta, init_path), new]
