"""The eo-ssl Processing algorithms: one per backend command, one per module (docs/DESIGN.md); their parameter names
are in :mod:`.parameters`."""

from __future__ import annotations

from .embed import EmbedAlgorithm
from .evaluate import EvaluateAlgorithm
from .export_dataset import ExportDatasetAlgorithm
from .finetune import FinetuneAlgorithm
from .label_parcels import LabelParcelsAlgorithm
from .predict import PredictAlgorithm
from .prepare import PrepareAlgorithm
from .pretrain import PretrainAlgorithm
from .similar import SimilarAlgorithm

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
