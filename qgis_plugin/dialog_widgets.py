"""The dialog's widget helpers: spin boxes whose range and default come from the backend's option spec, narrow combo
boxes, layer lists, and the wheel guard of its scrolled tabs."""

from __future__ import annotations

from qgis.core import QgsMapLayerProxyModel
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtCore import QEvent, QObject, Qt
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QFrame,
    QListWidget,
    QScrollArea,
    QSpinBox,
    QWidget,
)

from . import backend_spec


def spin_box(command: str, cli: str, unset: str | None = None) -> QSpinBox:
    """A spin box for a whole-number option: its range and default from the backend's spec. With ``unset`` (an
    option whose default depends on the method or the model) one step below the range shows that text and means
    "not given" (:func:`.dialog_plan.given` leaves it out)."""
    opt = backend_spec.option(command, cli)
    box = QSpinBox()
    low = int(opt["minimum"]) if opt.get("minimum") is not None else 0
    box.setRange(low - 1 if unset else low, int(opt["maximum"]) if opt.get("maximum") is not None else 2**31 - 1)
    if unset:
        box.setSpecialValueText(unset)
    default = backend_spec.default(command, cli)
    box.setValue(box.minimum() if default is None else int(default))
    return box


def spin_value(box: QSpinBox) -> int | None:
    """The value of a :func:`spin_box`; None at its "not given" value (the text shown below the range)."""
    return None if box.specialValueText() and box.value() == box.minimum() else box.value()


def narrow(combo: QComboBox, chars: int = 16) -> QComboBox:
    """A combo box as narrow as ``chars`` characters allow, whatever its longest item (layer names, long choices):
    the tab fits its width instead of being clipped."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo


def polygon_layer_combo() -> QgsMapLayerComboBox:
    """A narrow choice of the project's polygon layers, empty at first (nothing chosen)."""
    combo = narrow(QgsMapLayerComboBox())
    combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
    combo.setAllowEmptyLayer(True)
    combo.setLayer(None)
    return combo


def layer_list(on_change) -> QListWidget:
    """A list of layers to check (no selection: the check boxes say what is used); ``on_change`` on every check."""
    lst = QListWidget()
    lst.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    lst.setMinimumHeight(90)
    lst.itemChanged.connect(on_change)
    return lst


class WheelGuard(QObject):
    """The mouse wheel over a spin box, date or list of a scrolled tab scrolls the tab, unless that field has the
    keyboard (clicked into): scrolling down the Training tab never changes Crop on the way."""

    def __init__(self, scroll: QScrollArea) -> None:
        super().__init__(scroll)
        self.scroll = scroll

    def guard(self, page: QWidget) -> None:
        for widget in [*page.findChildren(QAbstractSpinBox), *page.findChildren(QComboBox)]:
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel alone gives no focus
            widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            QApplication.sendEvent(self.scroll.verticalScrollBar(), event)
            return True
        return False


def scrolled(page: QWidget) -> QScrollArea:
    """``page`` in a scroll area (a small screen scrolls instead of squeezing the wrapped explanations), guarded
    against the wheel (:class:`WheelGuard`)."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the page fits the width
    scroll.setWidget(page)
    WheelGuard(scroll).guard(page)
    return scroll
