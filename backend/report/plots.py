"""The evaluation report's figures (matplotlib, Agg backend, PNG): label efficiency, confusion matrices, t-SNE."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

METRIC_LABELS = {"oa": "overall accuracy", "f1_macro": "macro F1", "aa": "average accuracy", "miou": "mIoU"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def label_efficiency(results: Sequence[dict[str, Any]], path: str | Path, metrics: Sequence[str] = ("oa",
                     "f1_macro", "miou"), title: str = "", xlabel: str = "label fraction") -> Path:
    """Metric vs label budget (log x), one line per init (or path), one panel per metric."""
    plt = _plt()
    inits = list(dict.fromkeys(r["init"] for r in results))
    wide = len(inits) > 4  # many paths: a wider figure with the legend beside it
    fig, axes = plt.subplots(1, len(metrics), figsize=((7.5 if wide else 4.2) * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for init in inits:
            pts = sorted((r["fraction"], r["metrics"].get(metric)) for r in results
                         if r["init"] == init and r["metrics"].get(metric) is not None)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=init)
        fractions = sorted({r["fraction"] for r in results})
        if len(fractions) > 1:
            ax.set_xscale("log")
        ax.set_xticks(fractions)
        ax.set_xticklabels([f"{f:g}" for f in fractions])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    if wide:
        axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    else:
        axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def confusion_matrices(items: Sequence[tuple[str, np.ndarray]], class_names: Sequence[str], path: str | Path) -> Path:
    """Row-normalised confusion matrices (recall per reference class), one panel per (title, matrix)."""
    plt = _plt()
    k = len(class_names)
    size = max(3.5, 0.45 * k + 1.5)
    fig, axes = plt.subplots(1, len(items), figsize=(size * len(items), size), squeeze=False)
    for ax, (title, cm) in zip(axes[0], items):
        cm = np.asarray(cm, np.float64)
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    if cm[i, j]:
                        ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                                color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xticklabels(class_names, rotation=60, ha="right", fontsize=8)
        ax.set_yticklabels(class_names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("reference")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def tsne_panels(items: Sequence[tuple[str, np.ndarray, np.ndarray]], classes: Sequence[dict[str, Any]],
                path: str | Path) -> Path:
    """Scatter plots of 2D embeddings (title, (N, 2) points, (N,) class ids), coloured with the class colours."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(items), figsize=(4.6 * len(items), 4.4), squeeze=False)
    for ax, (title, pts, labels) in zip(axes[0], items):
        for c in classes:
            m = labels == c["id"]
            if m.any():
                ax.scatter(pts[m, 0], pts[m, 1], s=10, color=c.get("colour") or None, label=c["name"], alpha=0.8,
                           linewidths=0)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0][0].get_legend_handles_labels()
    ncol = max(1, min(len(labels), 3 * len(items)))
    rows = -(-len(labels) // ncol)
    bottom = min(0.4, 0.05 * rows + 0.02)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, markerscale=1.5)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
