"""The labelling panel (a dock widget): layer, class scheme, next uncertain parcel, undo, save."""

from __future__ import annotations

import contextlib
import html
from pathlib import Path

from qgis.core import (
    QgsMapLayerProxyModel,
    QgsWkbTypes,
)
from qgis.gui import QgsMapLayerComboBox, QgsRubberBand
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QSize, Qt
from qgis.PyQt.QtGui import QColor, QIcon, QPixmap
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

from ..class_schemes import ClassDef, load_scheme
from ..i18n import tr
from .labeller import ParcelLabeller, scheme_from_label_parcels
from .tool import ParcelLabelTool, zoom_to_next_uncertain


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
        self._watch_layer(layer)
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

    def _watch_layer(self, layer) -> None:
        """The status line follows every change of the layer's edit buffer: a label, an undo or redo (from the panel,
        Ctrl+Z on the map or QGIS's own Undo), a save or a rollback."""
        old = getattr(self, "_watched", None)
        if old is layer:
            return
        if old is not None and not sip.isdeleted(old):
            for sig in (old.undoStack().indexChanged, old.editingStopped, old.afterRollBack):
                with contextlib.suppress(TypeError):
                    sig.disconnect(self._on_buffer_changed)
        self._watched = layer
        if layer is not None:
            for sig in (layer.undoStack().indexChanged, layer.editingStopped, layer.afterRollBack):
                sig.connect(self._on_buffer_changed)

    def _on_buffer_changed(self, *_args) -> None:
        if self.labeller is not None and not sip.isdeleted(self.labeller.layer):
            self.labeller.layer.triggerRepaint()
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
        """Commit the edit buffer and say so (how many parcels, which file), or why it failed."""
        if self.labeller is None:
            return False
        layer = self.labeller.layer
        if not layer.isEditable() or not layer.isModified():
            self.status_label.setText(tr("Nothing to save: no parcel was labelled since the last save."))
            return False
        changed = len(layer.editBuffer().changedAttributeValues()) if layer.editBuffer() is not None else 0
        ok = layer.commitChanges()
        if not ok:
            self.status_label.setText("<span style='color:#b00'>{}</span>".format(html.escape(tr(
                "Saving failed: {errors}").format(errors="; ".join(layer.commitErrors())))))
            return False
        self._update_status()
        self.status_label.setText("<span style='color:#1a7f37'>{}</span> {}".format(html.escape(tr(
            "Saved: {n} parcel(s) written to {file}.").format(n=changed, file=layer.source().split("|")[0])),
            self.status_label.text()))
        return ok
