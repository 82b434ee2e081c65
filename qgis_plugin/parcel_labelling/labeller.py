"""The labelling logic for one polygon layer, without a canvas: the class scheme, one edit command per label (so
QGIS's undo/redo and save/discard work as usual), the class colours, and the order of the uncertain parcels (least
confident first, from the ``status`` of a ``label-parcels`` output)."""

from __future__ import annotations

import json

from qgis.core import (
    QgsFeatureRequest,
    QgsField,
    QgsGeometry,
    QgsPointXY,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QObject, QVariant, pyqtSignal

from ..algorithms.styling import style_parcels
from ..class_schemes import ClassDef

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
                from ..class_schemes import parse_classes

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
