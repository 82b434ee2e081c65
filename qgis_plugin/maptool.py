"""Parcel labelling by hand: a map tool and its panel.

Click a parcel to give it the current class; keys 1..9 choose the class, N jumps to the next uncertain parcel,
Ctrl+Z undoes. The keys work as soon as the tool is on (the map canvas takes the keyboard focus then, and gets it
back after a click in the panel), and in the panel too. The parcel "next uncertain" shows is outlined (not selected:
a selection's yellow would hide the class colour it gets). Every change goes through the layer's edit buffer as one
edit command (so QGIS's undo/redo and "save edits"/"discard" work as usual), and the layer shows the class colours
(categorised renderer).

The class scheme comes from a model package (``model.json``), a dataset, a JSON class list, a predicted map's
``.qml``, or the output of ``label-parcels`` (its GeoPackage records the classes with their colours). On a
``label-parcels`` output the ``status`` field is used: "next uncertain parcel" visits the parcels the model was
unsure of, least confident first, so the analyst reviews only those.
"""

from __future__ import annotations

import json
from pathlib import Path

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsField,
    QgsGeometry,
    QgsMapLayerProxyModel,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsMapLayerComboBox, QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import QObject, QSize, Qt, QVariant, pyqtSignal
from qgis.PyQt.QtGui import QColor, QCursor, QIcon, QPixmap
from qgis.PyQt.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .algorithms.styling import style_parcels
from .classes import ClassDef, load_scheme
from .i18n import tr

CLASS_ID_FIELD = "class_id"
CLASS_NAME_FIELD = "class_name"
STATUS_FIELD = "status"
SOURCE_FIELD = "label_src"
LABEL_PARCELS_METADATA = "eo_ssl_label_parcels"


def scheme_from_label_parcels(path: str) -> list[ClassDef] | None:
    """The classes recorded by ``label-parcels`` in its GeoPackage's layer metadata (with their colours)."""
    try:
        from osgeo import ogr
    except ImportError:  # pragma: no cover - GDAL's bindings come with QGIS
        return None
    ds = ogr.Open(str(path).split("|")[0])
    if ds is None:
        return None
    try:
        for i in range(ds.GetLayerCount()):
            text = ds.GetLayer(i).GetMetadataItem(LABEL_PARCELS_METADATA)
            if text:
                from .classes import parse_classes

                return parse_classes(json.loads(text)["classes"])
    except (ValueError, KeyError, TypeError):
        return None
    finally:
        ds = None
    return None


def _int(value) -> int:
    """An int from a Qt enum member (an int in PyQt5, an enum.Enum in PyQt6)."""
    return int(getattr(value, "value", value))


def _number(value) -> float:
    """A sortable number from an attribute (NULL/NaN/text last)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 2.0
    return v if v == v else 2.0


class ParcelLabeller(QObject):
    """The labelling logic for one polygon layer (no canvas needed: the map tool and the tests drive it)."""

    labelled = pyqtSignal(int, int)  # feature id, class id
    classChanged = pyqtSignal(int)  # noqa: N815 - index in the scheme
    shown = pyqtSignal(int)  # the parcel "next uncertain" went to

    def __init__(self, layer: QgsVectorLayer, scheme: list[ClassDef], parent: QObject | None = None) -> None:
        super().__init__(parent)
        if not scheme:
            raise ValueError("the class scheme is empty")
        self.layer = layer
        self.scheme = list(scheme)
        self.current = 0
        self._visited: set[int] = set()

    # -- classes -----------------------------------------------------------------------------------------------
    def set_current(self, index: int) -> bool:
        if 0 <= index < len(self.scheme):
            self.current = index
            self.classChanged.emit(index)
            return True
        return False

    def current_class(self) -> ClassDef:
        return self.scheme[self.current]

    # -- fields and style --------------------------------------------------------------------------------------
    def has_status(self) -> bool:
        return self.layer.fields().indexOf(STATUS_FIELD) >= 0

    def ensure_editing(self) -> bool:
        return self.layer.isEditable() or self.layer.startEditing()

    def ensure_fields(self) -> None:
        """class_id / class_name (and label_src on a label-parcels output) exist; added through the edit buffer."""
        wanted = [QgsField(CLASS_ID_FIELD, QVariant.Int), QgsField(CLASS_NAME_FIELD, QVariant.String)]
        if self.has_status():
            wanted.append(QgsField(SOURCE_FIELD, QVariant.String))
        missing = [f for f in wanted if self.layer.fields().indexOf(f.name()) < 0]
        if not missing:
            return
        if not self.ensure_editing():
            raise RuntimeError(f"layer {self.layer.name()} cannot be edited")
        for f in missing:
            self.layer.addAttribute(f)
        self.layer.updateFields()

    def apply_style(self) -> bool:
        return style_parcels(self.layer, self.scheme)

    # -- labelling ---------------------------------------------------------------------------------------------
    def assign(self, fid: int, cls: ClassDef | None = None) -> bool:
        """Give feature ``fid`` the class (default: the current one), as one undoable edit command."""
        cls = cls or self.current_class()
        self.ensure_fields()
        if not self.ensure_editing():
            return False
        fields = self.layer.fields()
        self.layer.beginEditCommand(f"Label parcel {fid} as {cls.name}")
        ok = self.layer.changeAttributeValue(fid, fields.indexOf(CLASS_ID_FIELD), cls.id)
        ok &= self.layer.changeAttributeValue(fid, fields.indexOf(CLASS_NAME_FIELD), cls.name)
        if self.has_status():
            ok &= self.layer.changeAttributeValue(fid, fields.indexOf(STATUS_FIELD), "labelled")
            ok &= self.layer.changeAttributeValue(fid, fields.indexOf(SOURCE_FIELD), "manual")
        if ok:
            self.layer.endEditCommand()
            self.layer.deselect(fid)  # the selection's yellow would hide the class colour
            self.layer.triggerRepaint()
            self.labelled.emit(fid, cls.id)
        else:
            self.layer.destroyEditCommand()
        return bool(ok)

    def feature_at(self, point: QgsPointXY, tolerance: float = 0.0) -> int | None:
        """The id of the (top-most) polygon containing ``point`` (layer CRS)."""
        rect = QgsRectangle(point.x() - tolerance, point.y() - tolerance, point.x() + tolerance,
                            point.y() + tolerance) if tolerance else QgsRectangle(point, point)
        request = QgsFeatureRequest().setFilterRect(rect).setNoAttributes()
        geom_pt = QgsGeometry.fromPointXY(point)
        hits = [f.id() for f in self.layer.getFeatures(request) if f.hasGeometry() and f.geometry().intersects(geom_pt)]
        return hits[-1] if hits else None

    def uncertain_ids(self) -> list[int]:
        """Parcels with status 'uncertain', least sure first: by mean 'confidence' where the map had one, else by
        'class_frac' (the majority class's share)."""
        if not self.has_status():
            return []
        names = [n for n in ("confidence", "class_frac") if self.layer.fields().indexOf(n) >= 0]
        request = QgsFeatureRequest().setFilterExpression(f"\"{STATUS_FIELD}\" = 'uncertain'")
        rows = []
        for f in self.layer.getFeatures(request):
            rows.append((tuple(_number(f[n]) for n in names), f.id()))
        rows.sort()
        return [fid for _, fid in rows]

    def next_uncertain(self) -> int | None:
        """The next uncertain parcel not visited yet in this session (or None when all were seen)."""
        for fid in self.uncertain_ids():
            if fid not in self._visited:
                self._visited.add(fid)
                return fid
        return None


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


def swatch(colour: str, size: int = 14) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(QColor(colour))
    return QIcon(pix)


class ParcelLabelPanel(QDockWidget):
    """The labelling panel: layer, class scheme (with the 1..9 keys), next uncertain parcel, undo, save."""

    #: Rows of the class list shown without scrolling (the nine classes the keys reach, and one more).
    VISIBLE_CLASSES = 10

    def __init__(self, iface, parent=None) -> None:
        super().__init__(tr("eo-ssl parcel labelling"), parent or (iface.mainWindow() if iface else None))
        self.setObjectName("EoSslParcelLabelPanel")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.scheme: list[ClassDef] = []
        self.labeller: ParcelLabeller | None = None
        self.tool: ParcelLabelTool | None = None
        self.current_fid: int | None = None
        self.highlight = QgsRubberBand(self.canvas, QgsWkbTypes.PolygonGeometry)
        self.highlight.setFillColor(QColor(0, 0, 0, 0))
        self.highlight.setStrokeColor(QColor("#e040fb"))
        self.highlight.setWidth(3)
        w = QWidget()
        lay = QVBoxLayout(w)
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        lay.addWidget(QLabel(tr("Parcel layer")))
        lay.addWidget(self.layer_combo)
        hl = QHBoxLayout()
        self.scheme_button = QPushButton(tr("Classes from…"))
        self.scheme_button.setToolTip(tr("A model package (model.json), a dataset.json, a JSON class list, a map's "
                                         ".qml or a label-parcels output (.gpkg)"))
        self.scheme_button.clicked.connect(self.choose_scheme)
        hl.addWidget(self.scheme_button)
        self.scheme_label = QLabel(tr("no classes yet"))
        hl.addWidget(self.scheme_label, 1)
        lay.addLayout(hl)
        self.class_list = QListWidget()
        self.class_list.setIconSize(QSize(14, 14))
        self.class_list.currentRowChanged.connect(self._on_row)
        self.class_list.itemClicked.connect(lambda _item: self.focus_canvas())
        self._size_class_list(self.VISIBLE_CLASSES)
        lay.addWidget(self.class_list, 1)
        self.next_button = QPushButton(tr("Next uncertain parcel (N)"))
        self.next_button.clicked.connect(self.next_uncertain)
        lay.addWidget(self.next_button)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label)
        hl = QHBoxLayout()
        self.activate_button = QPushButton(tr("Label with clicks"))
        self.activate_button.setCheckable(True)
        self.activate_button.setToolTip(tr("Click a parcel to give it the current class; keys 1..9 choose the "
                                           "class, N goes to the next uncertain parcel, Ctrl+Z undoes"))
        self.activate_button.toggled.connect(self.set_active)
        self.undo_button = QPushButton(tr("Undo"))
        self.undo_button.clicked.connect(self.undo)
        self.save_button = QPushButton(tr("Save edits"))
        self.save_button.clicked.connect(self.save)
        for b in (self.activate_button, self.undo_button, self.save_button):
            hl.addWidget(b)
        lay.addLayout(hl)
        self.setWidget(w)
        self.layer_combo.layerChanged.connect(self.on_layer_changed)
        self.on_layer_changed(self.layer_combo.currentLayer())

    def _size_class_list(self, rows: int) -> None:
        """Tall enough for ``rows`` classes (a dock shares the height with the others: without this it shows ~4)."""
        row = max(self.class_list.sizeHintForRow(0), self.class_list.fontMetrics().height() + 6, 18)
        self.class_list.setMinimumHeight(row * max(rows, 3) + 2 * self.class_list.frameWidth() + 4)

    # -- scheme and layer --------------------------------------------------------------------------------------
    def choose_scheme(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, tr("Class scheme"), "",
                                              tr("Class schemes (*.json *.qml *.gpkg);;All (*)"))
        if path:
            self.set_scheme_from(path)

    def set_scheme_from(self, path: str) -> bool:
        try:
            scheme = scheme_from_label_parcels(path) if path.lower().endswith(".gpkg") else load_scheme(path)
        except (OSError, ValueError) as exc:
            self.status_label.setText(tr("Cannot read classes from {path}: {error}").format(path=path, error=exc))
            return False
        if not scheme:
            self.status_label.setText(tr("No classes in {path}.").format(path=path))
            return False
        self.set_scheme(scheme, Path(path).name)
        return True

    def set_scheme(self, scheme: list[ClassDef], source: str = "") -> None:
        self.scheme = list(scheme)
        self.class_list.clear()
        for i, cls in enumerate(self.scheme):
            key = f"{i + 1}  " if i < 9 else "    "
            item = QListWidgetItem(swatch(cls.colour), f"{key}{cls.name}  (id {cls.id})")
            self.class_list.addItem(item)
        self._size_class_list(min(len(self.scheme), self.VISIBLE_CLASSES))
        self.scheme_label.setText(tr("{n} classes from {source}").format(n=len(self.scheme), source=source)
                                  if source else tr("{n} classes").format(n=len(self.scheme)))
        self._make_labeller()
        if self.scheme:
            self.class_list.setCurrentRow(0)

    def on_layer_changed(self, layer) -> None:
        if layer is not None and not self.scheme and layer.source():
            scheme = scheme_from_label_parcels(layer.source())
            if scheme:
                self.set_scheme(scheme, tr("the label-parcels output"))
                return
        self._make_labeller()

    def _make_labeller(self) -> None:
        layer = self.layer_combo.currentLayer()
        was_active = self.tool is not None and self.canvas.mapTool() is self.tool
        if self.tool is not None and was_active:
            self.canvas.unsetMapTool(self.tool)
        self.labeller, self.tool = None, None
        self.show_parcel(None)
        if layer is None or not self.scheme:
            self._update_status()
            return
        self.labeller = ParcelLabeller(layer, self.scheme, self)
        self.labeller.classChanged.connect(self.class_list.setCurrentRow)
        self.labeller.classChanged.connect(lambda _index: self._update_status())
        self.labeller.labelled.connect(self._on_labelled)
        self.labeller.shown.connect(self.show_parcel)
        self.labeller.apply_style()
        self.tool = ParcelLabelTool(self.canvas, self.labeller)
        if was_active or self.activate_button.isChecked():
            self.canvas.setMapTool(self.tool)
        self._update_status()

    def _on_row(self, row: int) -> None:
        if self.labeller is not None and row >= 0 and row != self.labeller.current:
            self.labeller.set_current(row)

    def _on_labelled(self, fid: int, _class_id: int) -> None:
        if fid == self.current_fid:
            self.show_parcel(None)
        self._update_status()

    def show_parcel(self, fid: int | None) -> None:
        """Outline the parcel ``fid`` (the one "next uncertain" went to); None removes the outline."""
        self.current_fid = fid
        if self.highlight is None:
            return
        self.highlight.reset(QgsWkbTypes.PolygonGeometry)
        if fid is not None and self.labeller is not None:
            feature = self.labeller.layer.getFeature(fid)
            if feature.hasGeometry():
                self.highlight.setToGeometry(feature.geometry(), self.labeller.layer)

    def _update_status(self) -> None:
        if self.labeller is None:
            self.status_label.setText(tr("Choose a polygon layer and a class scheme."))
            return
        cls = self.labeller.current_class()
        text = tr("Current class: <b>{name}</b> (key {key}).").format(
            name=cls.name, key=self.labeller.current + 1 if self.labeller.current < 9 else "-")
        if self.labeller.has_status():
            text += " " + tr("{n} uncertain parcel(s) left.").format(n=len(self.labeller.uncertain_ids()))
        self.status_label.setText(text)

    def cleanup(self) -> None:
        """Before the panel goes (the plugin unloads): the tool off, the outline off the canvas."""
        self.set_active(False)
        if self.highlight is not None:
            self.canvas.scene().removeItem(self.highlight)
            self.highlight = None

    # -- keys ----------------------------------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        """The tool's keys also work while the panel has the focus."""
        if self.tool is not None:
            self.tool.keyPressEvent(event)
            if event.isAccepted():
                self.focus_canvas()
                return
        super().keyPressEvent(event)

    def focus_canvas(self) -> None:
        """Give the keyboard back to the map while the tool is on."""
        if self.tool is not None and self.canvas.mapTool() is self.tool:
            self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)

    # -- actions -----------------------------------------------------------------------------------------------
    def set_active(self, on: bool) -> None:
        if self.tool is None:
            return
        if on:
            self.labeller.ensure_fields()
            self.canvas.setMapTool(self.tool)
        elif self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)

    def next_uncertain(self) -> int | None:
        if self.labeller is None:
            return None
        fid = zoom_to_next_uncertain(self.canvas, self.labeller)
        if fid is None:
            self.status_label.setText(tr("No uncertain parcel left."))
        self.focus_canvas()
        return fid

    def undo(self) -> None:
        if self.labeller is not None:
            self.labeller.layer.undoStack().undo()
            self.labeller.layer.triggerRepaint()
            self._update_status()
        self.focus_canvas()

    def save(self) -> bool:
        if self.labeller is None or not self.labeller.layer.isEditable():
            return False
        ok = self.labeller.layer.commitChanges()
        if not ok:
            self.status_label.setText(tr("Saving failed: {errors}").format(
                errors="; ".join(self.labeller.layer.commitErrors())))
        return ok
