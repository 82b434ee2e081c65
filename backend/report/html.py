"""The evaluation report as one self-contained HTML page: tables, and the PNGs embedded as base64 data URIs.

Self-contained means it can be mailed, attached to a ticket or opened from QGIS's Processing results viewer without
the folder around it: no external CSS, scripts or image links.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backend.report.plots import METRIC_LABELS

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}img{max-width:100%;border:1px solid #eee;margin:6px 0}
.best{font-weight:bold}.muted{color:#777;font-size:.85em}code{background:#f6f6f6;padding:0 3px}
"""


def embed_png(path: str | Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(Path(path).name)}" src="data:image/png;base64,{data}">'


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    out = ["<table><tr>" + "".join(f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>'
                                   for i, h in enumerate(header)) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c if isinstance(c, str) and c.startswith("<") else _fmt(c)}</td>'  # noqa: E501
                                    for i, c in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render(report: dict[str, Any], images: dict[str, Path]) -> str:
    """The page for ``report`` (the report.json document); ``images``: title -> PNG to embed."""
    if report.get("protocol") == "compare":
        return render_compare(report, images)
    results = report["results"]
    metrics = ["oa", "f1_macro", "aa", "miou"]
    rows = []
    best = {m: max((r["metrics"].get(m) or -1) for r in results) for m in metrics} if results else {}
    for r in results:
        cells: list[Any] = [r["init"], f'{r["fraction"]:g}', r.get("n_train")]
        for m in metrics:
            v = r["metrics"].get(m)
            cells.append(f'<span class="best">{v:.3f}</span>' if v is not None and v == best[m] else v)
        rows.append(cells)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>eo-ssl evaluation</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>eo-ssl evaluation</h1>",
        f"<p>Data <code>{html.escape(report['data'])}</code> ({html.escape(report['task'])}, "
        f"{len(report['classes'])} classes); protocol <b>{html.escape(report['protocol'])}</b>: "
        f"{html.escape(report['protocol_description'])}.</p>",
        f"<p class='muted'>Metrics on the validation split ({html.escape(report['validation'])}); label fractions "
        f"drawn {html.escape(report['fraction_unit'])}, stratified by class, seed {report['seed']}. "
        f"Created {html.escape(report['created'])} by eo-ssl {html.escape(report['code_version'])} in "
        f"{report['elapsed_s']:.0f} s.</p>",
        "<h2>Initialisations</h2>",
        _table(["init", "kind", "encoder", "method", "path"],
               [[i["label"], i["kind"], i["encoder"], i.get("method") or "–", i.get("path") or "–"]
                for i in report["inits"]]),
        "<h2>Results</h2>",
        _table(["init", "label fraction", "training items"] + [METRIC_LABELS[m] for m in metrics], rows),
    ]
    top = max(r["fraction"] for r in results) if results else None
    names = [c["name"] for c in report["classes"]]
    per_class = [r for r in results if r["fraction"] == top]
    if per_class:
        parts.append(f"<h2>Per-class IoU (label fraction {top:g})</h2>")
        parts.append(_table(["class"] + [r["init"] for r in per_class],
                            [[n] + [r["metrics"]["iou_per_class"].get(n) for r in per_class] for n in names]))
    for title, path in images.items():
        parts.append(f"<h2>{html.escape(title)}</h2>{embed_png(path)}")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_compare(report: dict[str, Any], images: dict[str, Path]) -> str:
    """The page of ``evaluate --protocol compare``: the sentence first, then every path at every budget."""
    summary = report.get("summary") or {}
    metric = "miou" if report["task"] == "segmentation" else "f1_macro"
    agg = report.get("aggregate") or []
    budgets = sorted({a["value"] for a in agg})
    paths = list(dict.fromkeys(a["path"] for a in agg))
    by = {(a["path"], a["value"]): a for a in agg}
    best_at = {b: max((a["mean"] for a in agg if a["value"] == b and a["mean"] is not None), default=None)
               for b in budgets}
    rows = []
    for p in paths:
        first = next(a for a in agg if a["path"] == p)
        cells: list[Any] = [p, first["kind"]]
        for b in budgets:
            a = by.get((p, b))
            if a is None or a["mean"] is None:
                cells.append(None)
                continue
            text = f"{a['mean']:.3f}" + (f" ± {a['sd']:.3f}" if len(a["values"]) > 1 else "")
            cells.append(f'<span class="best">{text}</span>' if a["mean"] == best_at[b] else f"<span>{text}</span>")
        rows.append(cells)
    label = {b: next(a["budget"] for a in agg if a["value"] == b) for b in budgets}
    n_train = {b: next(a["n_train"] for a in agg if a["value"] == b) for b in budgets}
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>eo-ssl evaluation</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>eo-ssl evaluation: which path, and what pre-training was worth</h1>",
        f"<p style='font-size:1.15em'><b>{html.escape(summary.get('text', ''))}</b></p>",
        f"<p class='muted'>Data <code>{html.escape(report['data'])}</code> ({html.escape(report['task'])}, "
        f"{len(report['classes'])} classes). Every path trains on the same parcels of each budget and is scored on "
        f"{html.escape(report['scored_on'])}, which no path trained on. Seeds {report['seeds']} (mean ± sd). "
        f"Created {html.escape(report['created'])} by eo-ssl {html.escape(report['code_version'])} in "
        f"{report['elapsed_s']:.0f} s.</p>",
        f"<h2>{METRIC_LABELS.get(metric, metric)} on held-out parcels</h2>",
        _table(["path", "kind"] + [f"{label[b]} ({n_train[b]} parcels)" for b in budgets], rows, left=2),
    ]
    worth = summary.get("pretraining")
    if worth:
        parts.append("<h2>What pre-training was worth</h2>")
        parts.append(_table(["budget", "pre-trained score", "random init reaches it at"],
                            [[f"{w['budget']:g}", w["score"], (f"{w['random_budget_for_same_score']:.3g}"
                              if w["random_budget_for_same_score"] else
                              ("never (better than random with every label)" if w["beyond_random"] else "–"))]
                             for w in worth["curve"]]))
    parts.append("<h2>Initialisations</h2>")
    parts.append(_table(["init", "kind", "encoder", "method", "path"],
                        [[i["label"], i["kind"], i["encoder"], i.get("method") or "–", i.get("path") or "–"]
                         for i in report["inits"]]))
    for title, path in images.items():
        parts.append(f"<h2>{html.escape(title)}</h2>{embed_png(path)}")
    parts.append("</body></html>")
    return "\n".join(parts)
