"""The eo-ssl Processing algorithms: one per backend command (docs/DESIGN.md)."""

from __future__ import annotations

from .data import ExportDatasetAlgorithm, PrepareAlgorithm
from .mapping import EmbedAlgorithm, LabelParcelsAlgorithm, PredictAlgorithm
from .training import EvaluateAlgorithm, FinetuneAlgorithm, PretrainAlgorithm

#: In the order of the workflow (their display names are numbered the same way).
ALGORITHMS = (PrepareAlgorithm, PretrainAlgorithm, FinetuneAlgorithm, EvaluateAlgorithm, PredictAlgorithm,
              EmbedAlgorithm, LabelParcelsAlgorithm, ExportDatasetAlgorithm)

__all__ = ["ALGORITHMS", "EmbedAlgorithm", "EvaluateAlgorithm", "ExportDatasetAlgorithm", "FinetuneAlgorithm",
           "LabelParcelsAlgorithm", "PredictAlgorithm", "PrepareAlgorithm", "PretrainAlgorithm"]
