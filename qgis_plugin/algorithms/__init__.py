"""The eo-ssl Processing algorithms: one per backend command (docs/DESIGN.md)."""

from __future__ import annotations

from .data import ExportDatasetAlgorithm, PrepareAlgorithm
from .mapping import EmbedAlgorithm, LabelParcelsAlgorithm, PredictAlgorithm
from .similar import SimilarAlgorithm
from .training import EvaluateAlgorithm, FinetuneAlgorithm, PretrainAlgorithm

#: Backend commands without an algorithm, and why (tests/plugin/test_option_contract.py).
CLI_ONLY_COMMANDS = {
    "import-weights": "a one-off conversion of a downloaded published checkpoint into a package, done once per "
                      "encoder from a terminal (README: Start from a published encoder)",
    "export-onnx": "exports a package for other tools (Deepness); eo-ssl's own Predict reads the package directly",
}

#: In the order of the workflow (their display names are numbered the same way).
ALGORITHMS = (PrepareAlgorithm, PretrainAlgorithm, FinetuneAlgorithm, EvaluateAlgorithm, PredictAlgorithm,
              EmbedAlgorithm, SimilarAlgorithm, LabelParcelsAlgorithm, ExportDatasetAlgorithm)

__all__ = ["ALGORITHMS", "CLI_ONLY_COMMANDS", "EmbedAlgorithm", "EvaluateAlgorithm", "ExportDatasetAlgorithm",
           "FinetuneAlgorithm", "LabelParcelsAlgorithm", "PredictAlgorithm", "PrepareAlgorithm", "PretrainAlgorithm",
           "SimilarAlgorithm"]
