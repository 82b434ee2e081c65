"""The map tool: a click labels the parcel under it; keys 1..9 choose the class, N jumps to the next uncertain parcel,
Ctrl+Z undoes."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateTransform,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsVectorLayer,
)
from qgis.gui import QgsMapTool
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QCursor

from .labeller import ParcelLabeller, _int


class ParcelLabelTool(QgsMapTool):
    """The map tool: click = label with the current class; 1..9 = choose the class; N = next uncertain parcel."""

    parcelClicked = pyqtSignal(int)  # noqa: N815

    def __init__(self, canvas, labeller: ParcelLabeller) -> None:
        super().__init__(canvas)
        self.labeller = labeller
        self.setCursor(QCursor(Qt.CursorShape.PointingHandCursor))

    def activate(self) -> None:
        """The canvas takes the keyboard focus: keys 1..9 and N work at once, without a first click (which would
        label a parcel)."""
        super().activate()
        self.canvas().setFocus(Qt.FocusReason.OtherFocusReason)

    def layer(self) -> QgsVectorLayer:
        return self.labeller.layer

    def to_layer_point(self, map_point: QgsPointXY) -> QgsPointXY:
        return self.toLayerCoordinates(self.layer(), map_point)

    def canvasReleaseEvent(self, event) -> None:  # noqa: N802 - QGIS API
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point = self.to_layer_point(event.mapPoint())
        tol = self.searchRadiusMU(self.canvas()) * 0.25 if hasattr(self, "searchRadiusMU") else 0.0
        fid = self.labeller.feature_at(point, 0.0) or self.labeller.feature_at(point, tol)
        if fid is None:
            return
        if self.labeller.assign(fid):
            self.parcelClicked.emit(fid)
            self.canvas().refresh()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - QGIS API
        key = _int(event.key())
        if _int(Qt.Key.Key_1) <= key <= _int(Qt.Key.Key_9) and self.labeller.set_current(key - _int(Qt.Key.Key_1)):
            event.accept()
            return
        if key == _int(Qt.Key.Key_N):
            zoom_to_next_uncertain(self.canvas(), self.labeller)
            event.accept()
            return
        if key == _int(Qt.Key.Key_Z) and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.layer().undoStack().undo()
            self.canvas().refresh()
            event.accept()
            return
        event.ignore()

    def isEditTool(self) -> bool:  # noqa: N802 - QGIS API
        return True


def zoom_to_next_uncertain(canvas, labeller: ParcelLabeller) -> int | None:
    """Zoom to the next uncertain parcel and flash it (``labeller.shown`` lets the panel outline it)."""
    fid = labeller.next_uncertain()
    if fid is None:
        return None
    layer = labeller.layer
    feature = layer.getFeature(fid)
    geom = QgsGeometry(feature.geometry())
    xform = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance())
    geom.transform(xform)
    box = geom.boundingBox()
    box.scale(2.5)
    canvas.setExtent(box)
    canvas.refresh()
    if hasattr(canvas, "flashGeometries"):
        canvas.flashGeometries([geom], canvas.mapSettings().destinationCrs())
    labeller.shown.emit(fid)
    return fid
