"""Feature rasters (an embedding) through the Processing Toolbox: *Export dataset* takes them like Sentinel-2
(``--features``), alone or beside a chip store's imagery, and the chips carry the decoded embedding."""

from __future__ import annotations

import json
from pathlib import Path

import rasterio

from tests.plugin.test_similar_tool import aef  # noqa: F401 - the AlphaEarth-format raster fixture


def _parcels(path: Path) -> Path:
    """Two parcels in EPSG:32633 on the two kinds of pixel of the ``aef`` raster (left and right half)."""
    def box(x0: float, x1: float) -> dict:
        return {"type": "Polygon", "coordinates": [[[x0, 5819600], [x1, 5819600], [x1, 5819800], [x0, 5819800],
                                                    [x0, 5819600]]]}

    path.write_text(json.dumps({"type": "FeatureCollection", "crs": {
        "type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}}, "features": [
        {"type": "Feature", "properties": {"kind": "left"}, "geometry": box(335020, 335180)},
        {"type": "Feature", "properties": {"kind": "right"}, "geometry": box(335220, 335380)}]}))
    return path


def test_export_dataset_reads_feature_rasters(eo_provider, aef: Path, tmp_path: Path) -> None:  # noqa: F811
    import processing

    parcels = _parcels(tmp_path / "parcels.geojson")
    out = tmp_path / "dataset"
    results = processing.run("eo_ssl:export_dataset", {"FEATURES": [str(aef)], "PARCELS": str(parcels),
                                                       "CLASS_FIELD": "kind", "CHIP": 16, "OUTPUT": str(out)})
    assert results["OUTPUT"] == str(out) and results["CHIPS"] >= 2
    meta = json.loads((out / "dataset.json").read_text())
    assert list(meta["sensors"]) == ["features"] and meta["sensors"]["features"]["bands"][-1] == "A63"
    chip = sorted((out / "images").glob("*.tif"))[0]
    with rasterio.open(chip) as src:
        assert src.count == 64 and src.dtypes[0] == "float32"
        x = src.read()
    assert abs(float((x[:, 8, 8] ** 2).sum()) - 1.0) < 0.02  # decoded (unit length), not the int8 codes
