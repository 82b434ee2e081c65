"""Evaluation metrics, plots and the self-contained HTML report."""
