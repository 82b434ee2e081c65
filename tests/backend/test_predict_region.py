"""``eo-ssl predict --scenes ... --out-dir DIR``: many scenes, one COG each, a mosaic VRT, resuming, failures.

Real scenes: dated Sentinel-2 files of tile T37MEM (``s2_timeseries_t37mem``: 169 x 140 px at 20 m, 10 bands, masked
clouds as nodata) as separate scenes, and BigEarthNet-MM S2 patches (a folder of band files at 10/20/60 m each, in
two UTM zones). The model has fixed weights (``fixed_package``): these tests are about the mapping machinery.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend.predict.region import expand_scenes, scene_names
from tests.backend.model_helpers import command_ok, error_of, fixed_package, run_command, summary_of, warnings_of

T37_BANDS = "B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12"
BEN_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
OPTS = ["--s2-bands", T37_BANDS, "--tile", "128", "--devices", "cpu"]


@pytest.fixture(scope="module")
def t37(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "s2_timeseries_t37mem").glob("SEN2_*.tif"))


@pytest.fixture(scope="module")
def t37_model(tmp_path_factory) -> Path:
    return fixed_package(tmp_path_factory.mktemp("region") / "t37-model", T37_BANDS.split(","), 20.0)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_every_scene_one_cog_and_a_mosaic(t37, t37_model, tmp_path):
    listing = tmp_path / "lists" / "scenes.txt"
    listing.parent.mkdir()
    listing.write_text(f"# three dates of T37MEM\n{t37[0]}\n\n{os.path.relpath(t37[1], listing.parent)}\n")
    out = tmp_path / "maps"
    events = command_ok("predict", ["--model", t37_model, "--scenes", listing, t37[4], "--out-dir", out, *OPTS])
    summary = summary_of(events)
    assert summary["scenes"] == summary["mapped"] == 3 and summary["resumed"] == 0 and summary["failed"] == []
    names = scene_names([t37[0], t37[1], t37[4]])
    maps = [out / f"{n}.tif" for n in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".eo-ssl-output", "mosaic.qml", "mosaic.vrt", *(p.name for p in maps), *(p.with_suffix(".qml").name
                                                                                  for p in maps)])
    for m, scene in zip(maps, (t37[0], t37[1], t37[4])):
        with rasterio.open(m) as src:
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.dtypes[0] == "uint8"
            job = json.loads(src.tags()["EO_SSL_PREDICT"])["job"]
            assert job["scene"] == str(scene.resolve()) and len(job["weights_sha256"]) == 64
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["step"] == progress[-1]["total"] == 1000 and progress[-1]["scenes_done"] == 3
    assert [e["path"] for e in events if e["event"] == "artifact" and e["kind"] == "mosaic"] == [str(out /
                                                                                                     "mosaic.vrt")]
    # the mosaic: the three dates on one grid, the later scene on top where it has data
    arrays = [_read(m) for m in maps]
    expected = arrays[0].copy()
    for a in arrays[1:]:
        expected = np.where(a != 255, a, expected)
    with rasterio.open(out / "mosaic.vrt") as src:
        assert (src.width, src.height) == (169, 140) and src.nodata == 255
        np.testing.assert_array_equal(src.read(1), expected)
        assert json.loads(src.tags()["CLASS_NAMES"]) == ["water", "forest", "farm", "urban"]
        assert src.colormap(1)[1][:3] == (27, 120, 55)
    assert (arrays[0] == 255).any() and (expected != 255).sum() > (arrays[0] != 255).sum()  # clouds filled


def test_a_scene_maps_as_predict_out_maps_it(t37, t37_model, tmp_path):
    """The map of a scene in a job is the map ``predict --s2 SCENE --out`` makes."""
    command_ok("predict", ["--model", t37_model, "--scenes", t37[2], "--out-dir", tmp_path / "job", *OPTS])
    command_ok("predict", ["--model", t37_model, "--s2", t37[2], "--out", tmp_path / "one.tif", *OPTS])
    name = scene_names([t37[2]])[0]
    np.testing.assert_array_equal(_read(tmp_path / "job" / f"{name}.tif"), _read(tmp_path / "one.tif"))


def test_a_finished_scene_is_not_redone(t37, t37_model, tmp_path):
    out = tmp_path / "maps"
    args = ["--model", t37_model, "--out-dir", out, *OPTS]
    command_ok("predict", ["--scenes", t37[0], t37[1], *args])
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tif")}
    again = summary_of(command_ok("predict", ["--scenes", t37[0], t37[1], *args]))
    assert again["resumed"] == 2 and again["mapped"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tif")} == stamps
    more = summary_of(command_ok("predict", ["--scenes", t37[0], t37[1], t37[2], *args]))
    assert more["resumed"] == 2 and more["mapped"] == 1
    # other options change the pixels: every map is made again (and replaced)
    other = summary_of(command_ok("predict", ["--scenes", t37[0], t37[1], t37[2], *args, "--overlap", "0.5"]))
    assert other["resumed"] == 0 and other["mapped"] == 3


def test_a_failed_scene_is_reported_and_the_others_kept(t37, t37_model, tmp_path):
    broken = tmp_path / "inputs" / "SEN2_20170101_broken.tif"
    broken.parent.mkdir()
    broken.write_bytes(b"II*\x00" + b"\x00" * 64)  # a TIFF header and nothing else
    out = tmp_path / "maps"
    rc, events = run_command("predict", ["--model", t37_model, "--scenes", t37[0], broken, "--out-dir", out, *OPTS])
    assert rc == 2
    err = error_of(events)
    assert err["code"] == "scenes_failed" and "SEN2_20170101_broken" in err["message"]
    assert "SEN2_20170101_broken" in warnings_of(events)["scene_failed"]
    good = out / f"{scene_names([t37[0]])[0]}.tif"
    assert good.is_file() and (out / "mosaic.vrt").is_file()
    assert not [p for p in out.iterdir() if ".tmp-" in p.name or ".part-" in p.name]


def test_scene_lists_and_names(t37, tmp_path):
    listing = tmp_path / "l.txt"
    listing.write_text(f"{t37[0]}\n# a comment\n{t37[0]}\n")  # the same scene twice: once
    assert expand_scenes([str(listing)]) == [t37[0].resolve()]
    with pytest.raises(Exception, match="do not exist"):
        expand_scenes([str(tmp_path / "nothing.tif")])
    a, b = tmp_path / "x" / "IMG_DATA", tmp_path / "y" / "IMG_DATA"
    assert scene_names([a, b, tmp_path / "S2_2020.tif", tmp_path / "S2_2020.jp2"]) == [
        "x_IMG_DATA", "y_IMG_DATA", f"{tmp_path.name}_S2_2020", f"{tmp_path.name}_S2_2020_2"]


@pytest.mark.parametrize(("extra", "code"), [
    (["--s2", "SCENE", "--out-dir", "OUT"], "bad_argument"),
    (["--out", "OUT/m.tif"], "bad_argument"),
    ([], "bad_argument"),
])
def test_scene_jobs_refuse_mixed_options(t37, t37_model, tmp_path, extra, code):
    args = [str(t37[0]) if a == "SCENE" else a.replace("OUT", str(tmp_path / "o")) for a in extra]
    rc, events = run_command("predict", ["--model", t37_model, "--scenes", t37[0], *args, *OPTS])
    assert rc == 2 and error_of(events)["code"] == code
    assert not (tmp_path / "o").exists()


def test_several_processes_need_scenes(t37, t37_model, tmp_path):
    rc, events = run_command("predict", ["--model", t37_model, "--s2", t37[0], "--out", tmp_path / "m.tif",
                                         "--s2-bands", T37_BANDS, "--devices", "cpu:2"])
    assert rc == 2 and "--scenes" in error_of(events)["hint"]


def test_out_dir_of_someone_else_is_refused(t37, t37_model, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    rc, events = run_command("predict", ["--model", t37_model, "--scenes", t37[0], "--out-dir", tmp_path / "mine",
                                         *OPTS])
    assert rc == 2 and error_of(events)["code"] == "not_eo_ssl_output"
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


@pytest.fixture(scope="module")
def ben_scenes(shared_data: Path) -> list[Path]:
    root = shared_data / "bigearthnet_mm" / "BigEarthNet-S2-Example"
    return [root / "S2A_MSIL2A_20170617T113321_36_85", root / "S2A_MSIL2A_20170617T113321_4_55",
            root / "S2A_MSIL2A_20170613T101031_87_48"]


@pytest.mark.slow
def test_two_processes_map_as_one(ben_scenes, tmp_path_factory, tmp_path):
    """Two gloo CPU processes (``--devices cpu:2``) on real BigEarthNet patches (two UTM zones: two mosaics) make
    the maps one process makes, bit for bit; only the first process reports (one start, one done)."""
    from tests.backend.pretrain_helpers import start_command

    model = fixed_package(tmp_path_factory.mktemp("ben") / "ben-model", BEN_BANDS, 10.0)
    common = ["--model", model, "--scenes", *ben_scenes, "--tile", "64"]
    one = summary_of(command_ok("predict", [*common, "--out-dir", tmp_path / "one", "--devices", "cpu"]))
    assert one["mapped"] == 3 and len(one["mosaics"]) == 2
    log = tmp_path / "two.jsonl"
    with open(log, "w") as f:
        proc = start_command("predict", [*common, "--out-dir", tmp_path / "two", "--devices", "cpu:2"], f)
        _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("start") == 1 and kinds.count("done") == 1 and kinds[-1] == "done"
    summary = events[-1]["summary"]
    assert summary["processes"] == 2 and summary["mapped"] == 3
    assert any("on 2 processes" in e["message"] for e in events if e["event"] == "log")
    assert [e for e in events if e["event"] == "progress"][-1]["step"] == 1000
    for name in scene_names(ben_scenes):
        np.testing.assert_array_equal(_read(tmp_path / "one" / f"{name}.tif"), _read(tmp_path / "two" / f"{name}.tif"))
    assert sorted(p.name for p in (tmp_path / "two").glob("mosaic*.vrt")) == ["mosaic_EPSG32629.vrt",
                                                                            "mosaic_EPSG32633.vrt"]
    assert not [p for p in (tmp_path / "two").iterdir() if ".tmp-" in p.name or ".part-" in p.name]


def test_cancelling_keeps_the_finished_maps(t37, t37_model, tmp_path):
    """A cancel while the second scene is mapped: the first map stays, the second leaves nothing behind, and the same
    command afterwards maps only what is missing."""
    import argparse

    from backend.events import Cancelled, Events
    from backend.predict import command as predict

    class CancelInSecondScene(Events):
        scenes = 0

        def log(self, message: str, level: str = "info") -> None:
            if "predicting" in message:
                self.scenes += 1
                self.cancelled = self.scenes == 2
            super().log(message, level)

    out = tmp_path / "maps"
    argv = ["--model", str(t37_model), "--scenes", str(t37[0]), str(t37[1]), "--out-dir", str(out),
            *map(str, OPTS)]
    parser = argparse.ArgumentParser()
    predict.add_arguments(parser)
    with pytest.raises(Cancelled):
        predict.run(parser.parse_args(argv), CancelInSecondScene(quiet=True))
    names = scene_names([t37[0], t37[1]])
    maps = sorted(p.name for p in out.glob("*.tif"))
    assert len(maps) == 1 and maps[0] in {f"{n}.tif" for n in names}
    assert not [p for p in out.iterdir() if ".tmp-" in p.name or ".part-" in p.name]
    again = summary_of(command_ok("predict", [*argv]))
    assert again["resumed"] == 1 and again["mapped"] == 1
