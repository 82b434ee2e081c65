"""What a raster layer of the project looks like to the dialog: Sentinel-1, Sentinel-2 or a feature raster (an
embedding: AlphaEarth, TESSERA, eo-ssl's Per-pixel embedding), from its band names, its name and its file name; and
the class field of a parcels layer. Guesses for the dialog's lists (checked first, shown first); the user decides.
"""

from __future__ import annotations

import re
from pathlib import Path

from qgis.core import QgsRasterLayer
from qgis.PyQt.QtCore import QVariant

from .dialog_plan import FieldInfo, guess_class_field

S1_HINT = re.compile(r"(^|[^a-z])(s1[ab]?|sentinel-?1|grd|vv|vh)([^a-z]|$)", re.IGNORECASE)
S2_HINT = re.compile(r"(^|[^a-z0-9])(s2[ab]?|sentinel-?2|msil1c|msil2a|l1c|l2a|t\d{2}[a-z]{3})([^a-z]|$)",
                     re.IGNORECASE)
#: A name of an embedding product or of eo-ssl's embedding output.
FEATURES_HINT = re.compile(r"(embed|alpha.?earth|tessera|satellite.?embedding|aef|clay)", re.IGNORECASE)
#: The band names of AlphaEarth (A00..A63) and of eo-ssl's embedding (``embedding 1 (PC)``).
_EMBEDDING_BAND = re.compile(r"^(A\d\d|embedding \d+( \(PC\))?)$", re.IGNORECASE)
#: A band named at the end of a per-band file name (``T33UUU_20170216T102101_B8A.jp2``, ``..._B02_10m.jp2``,
#: ``..._VH.tif``): the rule of the backend's ``band_token_in_filename``, for display (QGIS never imports the backend).
_S2_FILE_BAND = re.compile(r"(?:^|[_\-.])B(\d{1,2})(A?)(?:_\d{2}m)?$", re.IGNORECASE)
_S1_FILE_BAND = re.compile(r"(?:^|[_\-.])(VV|VH)$", re.IGNORECASE)
_S2_BAND = re.compile(r"^B(0[1-9]|1[0-2]|8A)$", re.IGNORECASE)
_GENERIC_BAND = re.compile(r"^Band \d+$")


def band_from_filename(path: str) -> str | None:
    """``B02``, ``B8A``, ``VV``... when the file name ends with a band name, else None."""
    stem = Path(path).stem
    m = _S2_FILE_BAND.search(stem)
    if m:
        return f"B{int(m.group(1)):02d}" if not m.group(2) else f"B{int(m.group(1))}A"
    m = _S1_FILE_BAND.search(stem)
    return m.group(1).upper() if m else None


def band_names(layer: QgsRasterLayer) -> list[str]:
    """Band descriptions of a raster layer; a single-band file that describes none is named by its file name
    (``..._B02.jp2`` -> ``B02``), else ``Band 3``."""
    names = []
    provider = layer.dataProvider()
    for b in range(1, layer.bandCount() + 1):
        desc = provider.generateBandName(b) if provider is not None else f"Band {b}"
        name = layer.bandName(b)
        if ":" in name:
            name = name.split(":", 1)[1].strip()
        names.append(name or desc)
    if len(names) == 1 and _GENERIC_BAND.match(names[0]):
        names = [band_from_filename(layer.source().split("|")[0]) or names[0]]
    return names


def _named(layer: QgsRasterLayer, hint: re.Pattern) -> bool:
    return bool(hint.search(layer.name()) or hint.search(Path(layer.source()).name))


def looks_like_s1(layer: QgsRasterLayer) -> bool:
    names = [n.upper() for n in band_names(layer)]
    if names and set(names) <= {"VV", "VH", "HH", "HV"}:
        return True
    return _named(layer, S1_HINT)


def looks_like_s2(layer: QgsRasterLayer) -> bool:
    if any(_S2_BAND.match(n) for n in band_names(layer)):
        return True
    return _named(layer, S2_HINT)


def looks_like_features(layer: QgsRasterLayer) -> bool:
    """A feature raster: an embedding's band names (AlphaEarth's A00.., eo-ssl's ``embedding 1``) or, with at least
    two bands none of them a Sentinel-2 band, an embedding's name (AlphaEarth, TESSERA, embed...)."""
    names = band_names(layer)
    if len(names) < 2 or any(_S2_BAND.match(n) for n in names):
        return False
    return all(_EMBEDDING_BAND.match(n) for n in names) or _named(layer, FEATURES_HINT)


def class_field_of(layer) -> str | None:
    """The field of a parcels layer whose values look like classes (:func:`.dialog_plan.guess_class_field`)."""
    if layer is None:
        return None
    fields = []
    for index, f in enumerate(layer.fields()):
        distinct = len(layer.uniqueValues(index, 102))  # capped: more than 100 is no class field anyway
        fields.append(FieldInfo(f.name(), f.type() == QVariant.String, distinct))
    return guess_class_field(fields, layer.featureCount())
