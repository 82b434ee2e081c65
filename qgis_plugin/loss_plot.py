"""A live loss curve drawn with QPainter (no plotting dependency inside QGIS's Python)."""

from __future__ import annotations

import math

from qgis.PyQt.QtCore import QPointF, QRectF, QSize, Qt
from qgis.PyQt.QtGui import QColor, QFont, QPainter, QPainterPath, QPalette, QPen
from qgis.PyQt.QtWidgets import QSizePolicy, QWidget

from .i18n import tr


def _int(value) -> int:
    return int(getattr(value, "value", value))


SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")


class LossPlot(QWidget):
    """Loss against step, one series per backend command (pre-train, fine-tune, ...). Log scale when the loss
    spans more than a decade."""

    MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 52, 12, 22, 26

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.current: str | None = None
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip(tr("Training loss reported by the backend"))

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(420, 180)

    # -- data --------------------------------------------------------------------------------------------------
    def clear(self) -> None:
        self.series.clear()
        self.current = None
        self.update()

    def start_series(self, name: str) -> None:
        self.series.setdefault(name, [])
        self.current = name
        self.update()

    def add_point(self, step: float, loss: float, series: str | None = None) -> None:
        if loss is None or not math.isfinite(float(loss)):
            return
        name = series or self.current or "loss"
        self.series.setdefault(name, []).append((float(step), float(loss)))
        self.current = name
        self.update()

    def add_event(self, event: dict) -> None:
        """Feed a backend ``progress`` event (others are ignored)."""
        if event.get("event") == "progress" and isinstance(event.get("loss"), (int, float)):
            self.add_point(event.get("step") or 0, event["loss"])

    def points(self) -> int:
        return sum(len(v) for v in self.series.values())

    # -- drawing -----------------------------------------------------------------------------------------------
    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        text_colour = pal.color(QPalette.ColorRole.Text)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        p.setFont(font)
        data = [pt for pts in self.series.values() for pt in pts]
        if not data:
            plot = QRectF(self.MARGIN_L, self.MARGIN_T, max(10, self.width() - self.MARGIN_L - self.MARGIN_R),
                          max(10, self.height() - self.MARGIN_T - self.MARGIN_B))
            p.setPen(QPen(QColor(text_colour.red(), text_colour.green(), text_colour.blue(), 90), 1))
            p.drawRect(plot)
            p.setPen(text_colour)
            flags = int(_int(Qt.AlignmentFlag.AlignCenter) | _int(Qt.TextFlag.TextWordWrap))
            p.drawText(plot, flags, tr("The training loss\nappears here while a model trains."))
            p.end()
            return
        xs = [x for x, _ in data]
        ys = [y for _, y in data]
        x0, x1 = min(xs), max(xs)
        if x1 <= x0:
            x1 = x0 + 1
        y_lo, y_hi = min(ys), max(ys)
        log = y_lo > 0 and y_hi / y_lo > 10
        fy = (lambda v: math.log10(v)) if log else (lambda v: v)
        v0, v1 = fy(y_lo), fy(y_hi)
        if v1 - v0 < 1e-12:
            v0, v1 = v0 - 0.5, v1 + 0.5
        pad = (v1 - v0) * 0.06
        v0, v1 = v0 - pad, v1 + pad
        ticks = [v0 + (v1 - v0) * i / 4 for i in range(5)]
        labels = [f"{(10 ** v if log else v):.3g}" for v in ticks]
        margin_l = max(self.MARGIN_L, max(p.fontMetrics().horizontalAdvance(t) for t in labels) + 10)
        plot = QRectF(margin_l, self.MARGIN_T, max(10, self.width() - margin_l - self.MARGIN_R),
                      max(10, self.height() - self.MARGIN_T - self.MARGIN_B))
        p.setPen(QPen(QColor(text_colour.red(), text_colour.green(), text_colour.blue(), 90), 1))
        p.drawRect(plot)

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + (x - x0) / (x1 - x0) * plot.width(),
                           plot.bottom() - (fy(y) - v0) / (v1 - v0) * plot.height())

        # grid + y labels
        p.setPen(QPen(QColor(text_colour.red(), text_colour.green(), text_colour.blue(), 40), 1, Qt.PenStyle.DashLine))
        for i in range(5):
            y = plot.bottom() - plot.height() * i / 4
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        p.setPen(text_colour)
        for i, label in enumerate(labels):
            y = plot.bottom() - plot.height() * i / 4
            p.drawText(QRectF(0, y - 8, margin_l - 5, 16),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
        p.drawText(QRectF(plot.left(), plot.bottom() + 4, 80, 16), Qt.AlignmentFlag.AlignLeft,
                   tr("step {step}").format(step=f"{x0:g}"))
        p.drawText(QRectF(plot.right() - 120, plot.bottom() + 4, 120, 16), Qt.AlignmentFlag.AlignRight,
                   tr("step {step}").format(step=f"{x1:g}"))
        p.drawText(QRectF(plot.left(), 2, plot.width(), 16), Qt.AlignmentFlag.AlignLeft,
                   tr("loss (log scale)") if log else tr("loss"))
        # series
        for i, (name, pts) in enumerate(self.series.items()):
            if not pts:
                continue
            colour = QColor(SERIES_COLOURS[i % len(SERIES_COLOURS)])
            p.setPen(QPen(colour, 2))
            path = QPainterPath(to_px(*pts[0]))
            for pt in pts[1:]:
                path.lineTo(to_px(*pt))
            p.drawPath(path)
            if len(pts) == 1:
                p.drawEllipse(to_px(*pts[0]), 2.5, 2.5)
            last = pts[-1]
            p.drawText(QRectF(plot.right() - 240, 2 + 0 * i, 240, 16), Qt.AlignmentFlag.AlignRight,
                       f"{name}: {last[1]:.4g}" if i == len(self.series) - 1 else "")
        # legend
        x = plot.left() + 6
        for i, name in enumerate(self.series):
            colour = QColor(SERIES_COLOURS[i % len(SERIES_COLOURS)])
            p.setPen(QPen(colour, 3))
            p.drawLine(QPointF(x, plot.top() + 10), QPointF(x + 14, plot.top() + 10))
            p.setPen(text_colour)
            p.drawText(QPointF(x + 18, plot.top() + 14), name)
            x += 24 + p.fontMetrics().horizontalAdvance(name)
        p.end()
