#!/usr/bin/env python3
"""Write ``qgis_plugin/backend_options.json``: the backend's option spec as the QGIS plugin reads it.

The plugin never imports the backend (it runs it as a subprocess, and QGIS's Python has no torch), so the one
declaration of every command's options (:mod:`backend.options`) reaches it as JSON, generated here and shipped in the
plugin zip. It holds:

- ``commands``: :func:`backend.options.spec` (name, type, default, choices, range, help... of every option);
- ``lists``: the choice lists of :mod:`backend.options` by name (methods, variants, precisions, ...);
- ``command_defaults``: what a command uses when an option whose declared default is None is not given and the value
  depends on the command only (the epochs of ``pretrain`` and ``finetune``, ``finetune``'s batch size);
- ``by_device``: what a command uses when an option is not given and the value depends on the device (the tiles per
  batch of predict and embed: ``{"cpu": 4, "cuda": 32}``);
- ``methods``: each pre-training method's own defaults for the options that depend on the method (encoder, batch
  size, crop, learning rate, weight decay, EMA decay), from the methods' ``DEFAULTS``.

Run it after changing an option or a default (``tests/backend/test_options.py`` fails while the committed file
differs from a fresh one)::

    .venv/bin/python scripts/generate_option_spec.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "qgis_plugin" / "backend_options.json"
LISTS = ("METHODS", "VARIANTS", "TASKS", "SEG_ARCHS", "HEADS", "PROTOCOLS", "COMPARE_PATHS", "CLASSIFIERS",
         "EMBED_DTYPES", "SPLITS", "PRECISIONS")


def _method_defaults() -> dict[str, dict[str, Any]]:
    """Per method, the defaults of the options whose default is "the method's" (CLI option dest -> value)."""
    from backend.ssl.base import COMMON_DEFAULTS, learning_rate
    from backend.ssl.registry import IMAGE_METHODS

    out: dict[str, dict[str, Any]] = {}
    for name, cls in IMAGE_METHODS.items():  # dense-moco: its own config, not offered by the plugin
        cfg = {**COMMON_DEFAULTS, **cls.DEFAULTS}
        out[name] = {"encoder": cfg["encoder"], "batch_size": cfg["batch_size"], "crop": cfg["crop"],
                     "lr": learning_rate(cfg), "weight_decay": cfg["weight_decay"]}
        if "momentum" in cfg:
            out[name]["ema"] = cfg["momentum"]
    return out


def build() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from backend import options
    from backend.predict import scene
    from backend.train import finetune, init_source, pretrain

    return {
        "generated_by": "scripts/generate_option_spec.py from backend/options.py: do not edit",
        "commands": options.spec(),
        "lists": {name.lower(): list(getattr(options, name)) for name in LISTS},
        "command_defaults": {"pretrain": {"epochs": pretrain.DEFAULT_EPOCHS},
                             "finetune": {"epochs": finetune.DEFAULTS["epochs"],
                                          "batch_size": finetune.DEFAULTS["batch_size"]}},
        # defaults that depend on the input, for the GUI's labels (keys no option has: never sent as a value)
        "input_defaults": {"encoder_of_random": init_source.DEFAULT_ENCODER,
                           "frozen_fraction_from_package": finetune.PRETRAINED_FROZEN_FRACTION,
                           "tile_of_segmentation": scene.SEGMENTATION_TILE},
        "by_device": {command: {"batch_size": dict(options.INFERENCE_BATCH_SIZE)} for command in ("predict", "embed")},
        "methods": _method_defaults(),
    }


def text() -> str:
    return json.dumps(build(), indent=1, sort_keys=False) + "\n"


def main() -> int:
    TARGET.write_text(text(), encoding="utf-8")
    print(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
