"""Parcel labelling by hand: the labelling logic (:mod:`.labeller`), the map tool (:mod:`.tool`) and its panel
(:mod:`.panel`).

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

from .labeller import ParcelLabeller, scheme_from_label_parcels
from .panel import ParcelLabelPanel
from .tool import ParcelLabelTool, zoom_to_next_uncertain

__all__ = ["ParcelLabelPanel", "ParcelLabelTool", "ParcelLabeller", "scheme_from_label_parcels",
           "zoom_to_next_uncertain"]
