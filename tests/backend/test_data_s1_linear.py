"""Sentinel-1 in linear power is detected and converted to dB; dB is kept as dB (and the log says which)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend.data.chipstore import ChipStore
from tests.backend.data_helpers import logs, prepare_ok


def _linear_copy(src_path: Path, dst_path: Path) -> Path:
    """The same file with every value v (dB) replaced by 10 ** (v / 10) (power); NaN stays NaN."""
    with rasterio.open(src_path) as src:
        profile, data, desc, tags = src.profile, src.read(), src.descriptions, src.tags()
    assert np.nanmedian(data) < 0  # really dB
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write((10.0 ** (data.astype(np.float64) / 10.0)).astype(np.float32))
        dst.update_tags(**tags)
        for i, name in enumerate(desc, start=1):
            if name:
                dst.set_band_description(i, name)
    return dst_path


def test_two_band_linear_file_is_converted_to_db(flanders_2018, tmp_path):
    s2 = flanders_2018 / "s2" / "S2_20180416.tif"
    s1_db = flanders_2018 / "s1" / "S1_20180416.tif"  # same day as the S2 date, same 10 m grid
    (tmp_path / "lin").mkdir()
    s1_lin = _linear_copy(s1_db, tmp_path / "lin" / s1_db.name)

    events = prepare_ok(["--s2", s2, "--s1", s1_lin, "--out", tmp_path / "lin_store"])
    assert "1 in linear power, converted to dB" in logs(events)
    st = ChipStore(tmp_path / "lin_store")
    assert st.manifest["sensors"]["s1"]["scale"] == "dB"
    assert [s["scale"] for s in st.manifest["sensors"]["s1"]["scenes"]] == ["linear"]

    with rasterio.open(s1_db) as src:
        expected = np.moveaxis(src.read(), 0, -1)  # (H, W, 2) dB
    got, valid = st.array("s1")[:, :, 0], st.array("s1_valid")[:, :, 0].astype(bool)
    np.testing.assert_array_equal(valid, np.isfinite(expected).all(axis=-1))
    np.testing.assert_allclose(got[valid], expected[valid], atol=1e-4, rtol=0)
    assert valid.mean() > 0.9

    events = prepare_ok(["--s2", s2, "--s1", s1_db, "--out", tmp_path / "db_store"])
    assert "values already in dB" in logs(events)
    db = ChipStore(tmp_path / "db_store")
    assert [s["scale"] for s in db.manifest["sensors"]["s1"]["scenes"]] == ["db"]
    np.testing.assert_array_equal(db.array("s1")[:, :, 0][valid], expected[valid])
    # the statistics are those of the dB values either way
    for pol in ("VV", "VH"):
        assert st.stats("s1")[pol]["mean"] == pytest.approx(db.stats("s1")[pol]["mean"], abs=1e-4)


def test_per_polarisation_linear_files_are_converted(shared_data, tmp_path):
    """BigEarthNet-MM layout: one file per polarisation (*_VV.tif, *_VH.tif)."""
    ben = shared_data / "bigearthnet_mm"
    s2 = next((ben / "BigEarthNet-S2-Example").glob("*_87_48"))
    s1 = next((ben / "BigEarthNet-S1-Example").glob("*_87_48"))
    lin = tmp_path / s1.name
    lin.mkdir()
    for f in s1.glob("*.tif"):
        _linear_copy(f, lin / f.name)
    events = prepare_ok(["--s2", s2, "--s1", lin, "--out", tmp_path / "store"])
    assert "converted to dB" in logs(events)
    st = ChipStore(tmp_path / "store")
    assert st.bands("s1") == ["VV", "VH"]
    for i, pol in enumerate(("VV", "VH")):
        with rasterio.open(next(s1.glob(f"*_{pol}.tif"))) as src:
            np.testing.assert_allclose(st.array("s1")[:, :, 0, i], src.read(1), atol=1e-4, rtol=0)
