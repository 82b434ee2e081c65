"""Time series: s2_timeseries_t37mem (21 dates, unnamed bands, nodata 0) and WorldCereal Flanders (S2 36 dates,
S1 40 dates, parcels), including the time-series datasets over the Flanders store."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
import rasterio

from backend.data.chipstore import ChipStore
from backend.data.datasets import RandomCropDataset, SlidingWindowDataset
from tests.backend.data_helpers import T37MEM_BANDS, prepare_ok, prepared_store, run_prepare

FLANDERS_S2 = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]


@pytest.fixture(scope="module")
def t37(shared_data):
    return shared_data / "s2_timeseries_t37mem"


def _file_date(path) -> dt.date:
    return dt.datetime.strptime(re.search(r"_(\d{8})", path.name).group(1), "%Y%m%d").date()


def test_t37mem_needs_band_names(t37, tmp_path):
    out = tmp_path / "t37"
    rc, events = run_prepare(["--s2", t37, "--out", out])
    assert rc == 2
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "unknown_bands"
    assert "--s2-bands" in error["hint"]
    assert not out.exists()


def test_t37mem_poi_keeps_exactly_the_dates_in_range(t37, tmp_path):
    files = sorted(t37.glob("*.tif"))
    assert len(files) == 21
    start, end = dt.date(2017, 6, 1), dt.date(2018, 8, 10)
    expected = sorted(d.isoformat() for d in map(_file_date, files) if start <= d <= end)
    assert len(expected) == 6
    out = tmp_path / "poi"
    prepare_ok(["--s2", t37, "--s2-bands", T37MEM_BANDS, "--poi", f"{start}/{end}", "--resolution", "20",
                "--out", out])
    st = ChipStore(out)
    assert st.dates("s2") == expected
    assert st.manifest["poi"] == [start.isoformat(), end.isoformat()]
    assert st.bands("s2") == T37MEM_BANDS.split(",")
    # open ends: everything from 2019 on
    out2 = tmp_path / "poi_open"
    prepare_ok(["--s2", t37, "--s2-bands", T37MEM_BANDS, "--poi", "2019-01-01/", "--resolution", "20",
                "--out", out2])
    assert ChipStore(out2).dates("s2") == sorted(d.isoformat() for d in map(_file_date, files)
                                                 if d >= dt.date(2019, 1, 1))


def test_t37mem_nodata_zero_is_invalid(t37, tmp_path):
    """On its own 20 m grid the series is copied: valid exactly where every band of the source is non-zero."""
    out = tmp_path / "t37_20m"
    prepare_ok(["--s2", t37, "--s2-bands", T37MEM_BANDS, "--resolution", "20", "--out", out])
    st = ChipStore(out)
    files = sorted(t37.glob("*.tif"), key=_file_date)
    assert st.dates("s2") == [_file_date(f).isoformat() for f in files]
    s2, valid = st.array("s2"), st.array("s2_valid").astype(bool)
    assert s2.shape == (140, 169, 21, 10)
    n_invalid = 0
    for t in (0, 5, 13, 20):
        with rasterio.open(files[t]) as src:
            data = np.moveaxis(src.read(), 0, -1)  # (H, W, C)
        expected_valid = (data != 0).all(axis=-1)
        np.testing.assert_array_equal(valid[:, :, t], expected_valid)
        np.testing.assert_array_equal(s2[:, :, t][expected_valid], data[expected_valid])
        assert (s2[:, :, t][~expected_valid] == 0).all()
        n_invalid += int((~expected_valid).sum())
    assert n_invalid > 1000  # the series does have masked clouds
    # the statistics skip the invalid pixels: the minimum stored valid value is never the nodata 0
    assert st.stats("s2")["B02"]["count"] == int(valid.sum())
    assert st.stats("s2")["B02"]["p02"] > 0

    # the --s2-bands order given (SOURCES.md: "most likely") fits the spectra of vegetated pixels
    bands = st.bands("s2")
    px = s2[valid].astype(np.float64)  # (N, C) valid observations of all dates
    nir, red = px[:, bands.index("B08")], px[:, bands.index("B04")]
    ndvi = (nir - red) / (nir + red)
    v = dict(zip(bands, px[ndvi > 0.4].mean(axis=0)))
    assert v["B03"] > v["B02"] > v["B04"]  # green peak, red absorption
    assert v["B05"] < v["B06"] < v["B07"]  # red edge
    assert v["B8A"] >= v["B08"] > 2 * v["B05"]  # NIR plateau
    assert v["B11"] > v["B12"]


# -- WorldCereal Flanders -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fl_store(flanders_2018, tmp_path_factory) -> ChipStore:
    d = flanders_2018
    return prepared_store(tmp_path_factory, "flanders", ["--s2", d / "s2", "--s1", d / "s1", "--parcels",
                                                         d / "parcels.gpkg", "--class-field", "ct_name"])


def test_flanders_series_and_parcels(fl_store, flanders_2018):
    s2_files = sorted((flanders_2018 / "s2").glob("S2_*.tif"))
    s1_files = sorted((flanders_2018 / "s1").glob("S1_*.tif"))
    assert (len(s2_files), len(s1_files)) == (36, 40)
    assert fl_store.dates("s2") == [_file_date(f).isoformat() for f in s2_files]
    assert fl_store.dates("s1") == [_file_date(f).isoformat() for f in s1_files]
    assert fl_store.bands("s2") == FLANDERS_S2 and fl_store.bands("s1") == ["VV", "VH"]
    assert fl_store.array("s2").shape == (64, 64, 36, 10) and fl_store.array("s1").shape == (64, 64, 40, 2)
    # S2 and S1 are on the grid: copied, nodata 0 / NaN invalid
    for t in (0, 17, 35):
        with rasterio.open(s2_files[t]) as src:
            data = np.moveaxis(src.read(), 0, -1)
        ok = (data != 0).all(axis=-1)
        np.testing.assert_array_equal(fl_store.array("s2_valid")[:, :, t].astype(bool), ok)
        np.testing.assert_array_equal(fl_store.array("s2")[:, :, t][ok], data[ok])
    for t in (0, 39):
        with rasterio.open(s1_files[t]) as src:
            data = np.moveaxis(src.read(), 0, -1)
        ok = np.isfinite(data).all(axis=-1)
        np.testing.assert_array_equal(fl_store.array("s1_valid")[:, :, t].astype(bool), ok)
        np.testing.assert_array_equal(fl_store.array("s1")[:, :, t][ok], data[ok])
    names = [c["name"] for c in fl_store.classes]
    assert {"Maize", "Potatoes"} <= set(names)
    assert sum(c["parcels"] for c in fl_store.classes) == 19
    # labels.tif (shipped with the patch) holds the same crop codes rasterised: the parcels match it
    import pyogrio

    _, _, _, fields = pyogrio.raw.read(flanders_2018 / "parcels.gpkg", columns=["ct_code", "ct_name"])
    code_of = dict(zip(fields[1], fields[0]))
    with rasterio.open(flanders_2018 / "labels.tif") as src:
        ref = src.read(1)
        ref_nodata = src.nodata
    labels = fl_store.array("labels")
    has = (labels >= 0) & (ref != ref_nodata) & (ref > 0)
    codes = np.array([code_of[n] for n in names])
    assert has.sum() > 1000
    assert (codes[labels[has]] == ref[has]).mean() > 0.95


def test_flanders_all_dates_dataset_shapes(fl_store):
    ds = SlidingWindowDataset(fl_store, size=32, dates="all")
    assert len(ds) == 4
    x = ds[0]
    assert x["s2"].shape == (36, 10, 32, 32) and x["s1"].shape == (40, 2, 32, 32)
    assert x["s2_valid"].shape == (36, 32, 32) and x["s1_valid"].shape == (40, 32, 32)
    assert x["s2_doy"].shape == (36,) and x["s1_doy"].shape == (40,)
    assert x["label"].shape == (32, 32) and x["aoi"].shape == (32, 32)
    doy = [dt.date.fromisoformat(d).timetuple().tm_yday for d in fl_store.dates("s2")]
    assert x["s2_doy"].tolist() == doy


def _which_date(sample_x: np.ndarray, arr: np.ndarray, pos, size, mean, std) -> int:
    """The date index whose normalised crop equals ``sample_x`` (C, h, w)."""
    r, c = pos
    crop = np.asarray(arr[r:r + size, c:c + size], np.float32)  # (h, w, T, C)
    norm = (crop - mean) / std
    for t in range(crop.shape[2]):
        cand = norm[:, :, t].transpose(2, 0, 1)
        nz = sample_x != 0
        if np.allclose(cand[nz], sample_x[nz], atol=1e-5):
            return t
    raise AssertionError("no date matches the sample")


@pytest.mark.parametrize("sensors", [("s2", "s1"), ("s1", "s2")])
def test_flanders_random_date_takes_the_nearest_s1_date(fl_store, sensors):
    ds = RandomCropDataset(fl_store, size=16, length=12, sensors=sensors, dates="random", seed=3)
    s2_ord = [dt.date.fromisoformat(d).toordinal() for d in fl_store.dates("s2")]
    s1_ord = np.array([dt.date.fromisoformat(d).toordinal() for d in fl_store.dates("s1")])
    picked = set()
    for i in range(len(ds)):
        x = ds[i]
        assert x["s2"].shape == (1, 10, 16, 16) and x["s1"].shape == (1, 2, 16, 16)
        pos = x["pos"].tolist()
        t2 = _which_date(x["s2"][0].numpy(), fl_store.array("s2"), pos, 16, *fl_store.mean_std("s2"))
        t1 = _which_date(x["s1"][0].numpy(), fl_store.array("s1"), pos, 16, *fl_store.mean_std("s1"))
        gap = abs(s1_ord[t1] - s2_ord[t2])
        assert gap == np.abs(s1_ord - s2_ord[t2]).min(), f"S2 {t2} got S1 {t1} ({gap} days), not the nearest"
        assert x["s2_doy"].item() == dt.date.fromordinal(s2_ord[t2]).timetuple().tm_yday
        picked.add(t2)
    assert len(picked) > 3  # dates are drawn, not fixed
