"""The season calendar (:mod:`backend.data.calendar`): maps that travel to another place, year and set of dates.

- The calendar's periods, the season a set of dates is read in, and the refusal of a period without acquisitions.
- Each period is the per-band median of the valid observations in it (checked against numpy on the real 2018 cube);
  periods without one are filled along time.
- A pixel classifier trained on one real Flanders patch (2018, 36 S2 / 40 S1 dates) maps the other (75 km away,
  2019, 54 S2 / 80 S1 other dates) and the reverse: ``predict`` gives exactly the classifier applied to the other
  patch's calendar cube; a season with a month missing is refused, naming the month.
- ``predict --scenes``: one season model maps two tiles of other dates, each in its own season.
- ``auto`` with two parcels a class keeps the robust default (the vote) and says why.
- ``--bands``: a model of the bands that a 20 m product shares.
- Presto's embedding in the pixel classifier and in ``embed`` equals Presto's own embedding of the pixels' monthly
  composites.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from backend.data.calendar import Calendar, composite_periods, season_calendar
from backend.data.chipstore import ChipStore
from backend.errors import EoSslError
from backend.pixel.data import labelled_pixels, pixel_input, read_inputs
from backend.pixel.features import fill_along_time
from tests.backend.data_helpers import prepare_ok
from tests.backend.model_helpers import cached, command_ok, error_of, read_meta, run_command, summary_of
from tests.backend.pixel_helpers import direct_map, pixel_embeddings, read_map

PATCHES = ("worldcereal_flanders_2018", "worldcereal_flanders_2019")


def patch_store(shared_data: Path, base: Path, name: str) -> Path:
    d = shared_data / name
    return cached(base, f"{name}-store", lambda out: prepare_ok(
        ["--s2", d / "s2", "--s1", d / "s1", "--parcels", d / "parcels.gpkg", "--class-field", "ct_name",
         "--out", out]))


@pytest.fixture(scope="module")
def stores(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.getbasetemp()
    return {name: patch_store(shared_data, base, name) for name in PATCHES}


@pytest.fixture(scope="module")
def models(stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A linear pixel classifier (no smoothing: pointwise, so a map is exactly the classifier) of each patch."""
    base = tmp_path_factory.getbasetemp()
    return {name: cached(base, f"{name}-calendar-linear", lambda out, s=store: command_ok(
        "finetune", ["--data", s, "--arch", "pixel", "--classifier", "linear", "--smooth", "0", "--max-pixels",
                     "2000", "--out", out])) for name, store in stores.items()}


# -- the calendar -------------------------------------------------------------------------------------------------
def test_periods_anchor_and_refusal() -> None:
    cal = Calendar("03-01", "month", 8)
    assert cal.labels(2018) == [f"2018-{m:02d}" for m in range(3, 11)]
    assert cal.months(2019) == list(range(2, 10))
    assert cal.assign(["2018-02-28", "2018-03-01", "2018-10-31", "2018-11-01", None], 2018).tolist() == \
        [-1, 0, 7, -1, -1]
    # the season the dates cover best; the training year while it covers as many periods as any other
    dates = [dt.date(2019, m, 5) for m in range(1, 13)] + [dt.date(2018, 9, 1)]
    assert cal.anchor(dates) == 2019
    assert cal.anchor([dt.date(2018, m, 5) for m in range(3, 11)] + [dt.date(2019, m, 5) for m in range(3, 11)],
                      prefer=2018) == 2018
    with pytest.raises(EoSslError) as err:
        cal.check_covered("s2", [d for d in dates if d.month != 4], 2019)
    assert err.value.code == "period_not_covered" and "2019-04" in err.value.message
    ten = Calendar("04-01", "10d", 3)
    assert ten.labels(2018) == ["2018-04-01", "2018-04-11", "2018-04-21"]


def test_season_from_the_option_the_poi_or_the_best_covered_months() -> None:
    dates = [f"2018-{m:02d}-10" for m in range(1, 13)] + ["2017-09-01"]
    assert season_calendar("03-01/10-31", "month", dates) == (Calendar("03-01", "month", 8), 2018)
    assert season_calendar(None, "month", dates, poi=["2018-01-01", "2018-12-31"]) == \
        (Calendar("01-01", "month", 12), 2018)
    # a POI wider than the data: the empty months at its ends are left out
    assert season_calendar(None, "month", dates[:6], poi=["2018-01-01", "2018-12-31"]) == \
        (Calendar("01-01", "month", 6), 2018)
    assert season_calendar(None, "month", dates)[0].periods == 12
    with pytest.raises(EoSslError):
        season_calendar("March/October", "month", dates)


def test_gaps_are_filled_along_time() -> None:
    nan = float("nan")
    v = torch.tensor([[nan, 1.0, nan, 3.0, nan], [nan, nan, nan, nan, nan], [2.0, nan, nan, nan, 6.0]])
    assert torch.equal(fill_along_time(v, 1), torch.tensor([[1.0, 1, 2, 3, 3], [0, 0, 0, 0, 0], [2, 3, 4, 5, 6]]))


def test_each_period_is_the_median_of_its_valid_observations(stores: dict[str, Path]) -> None:
    store = ChipStore(stores[PATCHES[0]])
    inp = pixel_input(store)
    assert inp.calendar == Calendar("11-01", "month", 12) and inp.year == 2017
    px = labelled_pixels(store, inp, "train")
    rows, cols = px.rows[::97], px.cols[::97]
    x = read_inputs(store, inp, rows, cols)  # (N, S2 12 x 10 + S1 12 x 2)
    b = inp.blocks[0]
    raw = np.asarray(store.array("s2")[rows, cols], np.float32)
    valid = np.asarray(store.array("s2_valid")[rows, cols]).astype(bool)
    z = (raw - np.asarray(b.mean, np.float32)) / np.asarray(b.std, np.float32)
    z[~valid] = np.nan
    period = inp.calendar.assign(store.dates("s2"), 2017)
    for p in (0, 5, 11):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a pixel cloudy all month: NaN
            ref = np.nanmedian(z[:, period == p], axis=1)
        got = x[:, p * 10:(p + 1) * 10]
        assert np.allclose(got, ref, equal_nan=True, atol=1e-6)
    direct = composite_periods(z, period, 12).reshape(len(rows), -1)
    assert np.array_equal(np.isnan(direct), np.isnan(x[:, :120]))


# -- maps that travel ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("train,other", [(0, 1), (1, 0)], ids=["2018-to-2019", "2019-to-2018"])
def test_a_model_of_one_patch_maps_the_other(train: int, other: int, stores: dict[str, Path],
                                             models: dict[str, Path], shared_data: Path, tmp_path: Path) -> None:

    model = models[PATCHES[train]]
    d = shared_data / PATCHES[other]
    out = tmp_path / "map.tif"
    events = command_ok("predict", ["--model", model, "--s2", d / "s2", "--s1", d / "s1", "--out", out,
                                    "--devices", "cpu"])
    assert any("season calendar" in e.get("message", "") for e in events if e["event"] == "log")
    net, cube, direct = direct_map(model, stores[PATCHES[other]])
    assert np.array_equal(read_map(out), direct)
    # the other patch is read in its own season: the same months of the next (or the previous) year
    year = net.features.inp.year_for(cube.dates("s2"))
    assert year == net.features.inp.year + (1 if train == 0 else -1)


def test_a_season_with_a_month_missing_is_refused(models: dict[str, Path], shared_data: Path,
                                                  tmp_path: Path) -> None:
    d = shared_data / PATCHES[1]
    no_april = [f for f in sorted((d / "s2").glob("*.tif")) if "_201904" not in f.name]
    out = tmp_path / "map.tif"
    rc, events = run_command("predict", ["--model", models[PATCHES[0]], "--s2", *no_april, "--s1", d / "s1",
                                         "--out", out])
    err = error_of(events)
    assert rc == 2 and err["code"] == "period_not_covered" and "2019-04" in err["message"]
    assert not out.exists()


def test_auto_with_two_parcels_a_class_keeps_the_vote(stores: dict[str, Path]) -> None:
    """Few parcels: the grouped cross-validation's scores are noise, the robust default is kept and the reason given
    (a fixed draw of real features: 2 training parcels a class of the 2019 patch)."""
    from backend.pixel.data import compute_features
    from backend.pixel.features import PixelFeatures
    from backend.pixel.train import select

    store = ChipStore(stores[PATCHES[1]])
    inp = pixel_input(store)
    px = labelled_pixels(store, inp, ("train", "val", "test"))
    keep = np.zeros(len(px), bool)
    for c in np.unique(px.labels):
        for p in np.unique(px.parcels[px.labels == c])[:2]:
            keep |= px.parcels == p
    px = px.take(np.nonzero(keep)[0][::3])
    f = compute_features(PixelFeatures(inp), store, inp, px)
    sel = select(f, px.labels, px.parcels, len(store.classes), f.shape[1], ["linear", "gbm", "rf", "vote"], False,
                 0)
    assert sel.classifier == "vote" and "fewer than 3" in sel.reason and sel.cv_miou is not None
    assert sum(r["kept"] for r in sel.table) == 1 and len(sel.table[0]["fold_miou"]) == sel.folds == 2


def test_selection_survives_a_fold_of_one_class(stores: dict[str, Path]) -> None:
    """Two classes, one of them a single parcel: a fold trains on the other class alone and predicts it (scikit-learn
    would refuse to fit one class)."""
    from backend.pixel.data import compute_features
    from backend.pixel.features import PixelFeatures
    from backend.pixel.train import select

    store = ChipStore(stores[PATCHES[0]])
    inp = pixel_input(store)
    px = labelled_pixels(store, inp, ("train", "val", "test"))
    counts = {int(c): len(np.unique(px.parcels[px.labels == c])) for c in np.unique(px.labels)}
    a = max(counts, key=counts.get)  # a class of 3 parcels or more, and another
    b = next(c for c in counts if c != a)
    pa = np.unique(px.parcels[px.labels == a])[:3]
    pb = np.unique(px.parcels[px.labels == b])[:1]
    px = px.take(np.nonzero(np.isin(px.parcels, np.r_[pa, pb]))[0][::2])
    f = compute_features(PixelFeatures(inp), store, inp, px)
    sel = select(f, px.labels, px.parcels, len(store.classes), f.shape[1], ["linear", "vote"], False, 0)
    assert sel.folds == 2 and sel.classifier == "vote" and all(r["cv_miou"] >= 0 for r in sel.table)


def test_bands_a_20m_product_shares(stores: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "m20"
    events = command_ok("finetune", ["--data", stores[PATCHES[0]], "--arch", "pixel", "--classifier", "linear",
                                     "--bands", "B05,B06,B07,b8a,B11,B12,VV,VH", "--max-pixels", "500",
                                     "--out", out])
    assert summary_of(events)["classifier"] == "linear"
    meta = read_meta(out)
    assert [c[1] for c in meta["input"]["channels"]] == ["B05", "B06", "B07", "B8A", "B11", "B12", "VV", "VH"]
    rc, events = run_command("finetune", ["--data", stores[PATCHES[0]], "--arch", "pixel", "--bands", "B01,B05",
                                          "--out", tmp_path / "bad"])
    assert rc == 2 and error_of(events)["code"] == "missing_bands" and "B01" in error_of(events)["message"]
    assert not (tmp_path / "bad").exists()


# -- pixel time-series encoders in the pixel classifier ----------------------------------------------------------
PRESTO = Path("published_encoders") / "presto" / "default_model.pt"


def test_presto_embedding_reads_each_pixels_calendar_series(stores: dict[str, Path], shared_data: Path,
                                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    """``finetune --arch pixel --init PRESTO_PACKAGE``: the model's embedding features are Presto's own embedding of
    each pixel's monthly composites (raw values, the months of the season, the area's centre), and the package
    rebuilds them from ``model.json`` alone."""
    from backend.models.presto import load_presto_package

    base = tmp_path_factory.getbasetemp()
    pkg = cached(base, "presto-package", lambda out: command_ok(
        "import-weights", [shared_data / PRESTO, "--encoder", "presto", "--out", out]))
    model = cached(base, "presto-pixel-model", lambda out: command_ok(
        "finetune", ["--data", stores[PATCHES[0]], "--arch", "pixel", "--init", pkg, "--classifier", "linear",
                     "--smooth", "0", "--max-pixels", "300", "--out", out]))
    meta = read_meta(model)
    emb = meta["architecture"]["features"]["embedding"]
    assert emb["kind"] == "series" and emb["family"] == "presto" and emb["dim"] == 128
    assert emb["months"] == [10, 11, *range(10)]  # November 2017 .. October 2018
    net, inp, x, feats = pixel_embeddings(model, stores[PATCHES[0]], 350, 128)
    assert net.pointwise
    # the same pixels by hand: raw monthly medians per band, NaN where a month has no observation
    raw: dict[str, torch.Tensor] = {}
    for b, block in enumerate(inp.blocks):
        z = x[:, inp.offsets()[b]:inp.offsets()[b] + block.size].reshape(len(x), len(block.dates), -1)
        for c, band in enumerate(block.bands):
            raw[band] = z[:, :, c] * block.std[c] + block.mean[c]
    latlon = torch.tensor([emb["latlon"]], dtype=torch.float32).expand(len(x), 2)
    ref = load_presto_package(pkg).embed(raw, torch.tensor(emb["months"]), latlon)
    assert torch.allclose(feats, ref, atol=1e-4)
    assert 50.0 < emb["latlon"][0] < 52.0 and 2.5 < emb["latlon"][1] < 6.0  # Flanders


def test_embed_with_presto_writes_each_pixels_embedding(stores: dict[str, Path], shared_data: Path,
                                                        tmp_path_factory: pytest.TempPathFactory,
                                                        tmp_path: Path) -> None:
    """``embed --model PRESTO_PACKAGE`` on the 2019 scenes (a 16 x 16 px box): each pixel's band values are Presto's
    embedding of its monthly series (the scenes' 12 best covered months), as the pixel classifier computes it."""
    from backend.models.presto import load_presto_package

    base = tmp_path_factory.getbasetemp()
    pkg = cached(base, "presto-package", lambda out: command_ok(
        "import-weights", [shared_data / PRESTO, "--encoder", "presto", "--out", out]))
    d = shared_data / PATCHES[1]
    out = tmp_path / "emb.tif"
    x0, y1 = 574680.0 + 200, 5622440.0 - 300  # 20 columns in, 30 rows down
    command_ok("embed", ["--model", pkg, "--s2", d / "s2", "--s1", d / "s1", "--bbox",
                         f"{x0},{y1 - 160},{x0 + 160},{y1}", "--bbox-crs", "EPSG:32631", "--dim", "0",
                         "--out", out, "--devices", "cpu"])
    with rasterio.open(out) as src:
        assert src.count == 128 and src.shape == (16, 16)
        got = src.read()[:, [0, 7, 15], [0, 9, 15]].T  # three pixels
    store = ChipStore(stores[PATCHES[1]])
    inp = pixel_input(store, bands=["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12", "VV", "VH"])
    rows, cols = np.array([30, 37, 45]), np.array([20, 29, 35])
    x = torch.from_numpy(read_inputs(store, inp, rows, cols))
    raw: dict[str, torch.Tensor] = {}
    for b, block in enumerate(inp.blocks):
        z = x[:, inp.offsets()[b]:inp.offsets()[b] + block.size].reshape(3, len(block.dates), -1)
        for c, band in enumerate(block.bands):
            raw[band] = z[:, :, c] * block.std[c] + block.mean[c]
    from backend.pixel.train import grid_latlon

    grid = dict(store.manifest["grid"])
    t = list(grid["transform"])
    grid.update(width=16, height=16, transform=[t[0], t[1], x0, t[3], t[4], y1])
    latlon = torch.tensor([grid_latlon(grid)], dtype=torch.float32).expand(3, 2)
    ref = load_presto_package(pkg).embed(raw, torch.tensor(inp.calendar.months(inp.year)), latlon)
    assert np.allclose(got, ref.numpy(), atol=1e-4)


def test_predict_scenes_maps_two_tiles_of_other_dates(stores: dict[str, Path], shared_data: Path,
                                                     tmp_path: Path) -> None:
    """``predict --scenes``: one Sentinel-2 season model (``--bands``: S2 only) maps two tiles, each a folder of its
    own dated files (2018 and 2019, 75 km apart), each in its own season."""
    model = tmp_path / "s2-model"
    command_ok("finetune", ["--data", stores[PATCHES[0]], "--arch", "pixel", "--classifier", "linear",
                            "--bands", "B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12", "--max-pixels", "500",
                            "--smooth", "0", "--out", model])
    assert list(read_meta(model)["input"]["dates"]) == ["s2"]
    out = tmp_path / "maps"
    events = command_ok("predict", ["--model", model, "--scenes", shared_data / PATCHES[0] / "s2",
                                    shared_data / PATCHES[1] / "s2", "--out-dir", out, "--devices", "cpu"])
    maps = sorted(p.name for p in out.glob("*.tif"))
    assert len(maps) == 2, maps
    seasons = [e["message"] for e in events if e["event"] == "log" and "season calendar" in e.get("message", "")]
    assert any("season of 2017" in m for m in seasons) and any("season of 2018" in m for m in seasons)


def test_own_ts_byol_embedding_in_the_pixel_classifier(stores: dict[str, Path], shared_data: Path,
                                                       tmp_path_factory: pytest.TempPathFactory,
                                                       tmp_path: Path) -> None:
    """``pretrain --method ts-byol`` on both patches' unlabelled imagery, then ``finetune --arch pixel --init`` it:
    the model's embedding features are the encoder's own ``embed`` of each pixel's calendar series (a fixed package:
    nothing is asserted about what 8 steps learnt), and the model maps the other patch."""
    from backend.models.series_encoder import load_series_package, series_from_blocks

    base = tmp_path_factory.getbasetemp()
    pkg = cached(base, "ts-byol-package", lambda out: command_ok(
        "pretrain", ["--data", stores[PATCHES[0]], stores[PATCHES[1]], "--method", "ts-byol", "--max-steps", "8",
                     "--batch-size", "64", "--devices", "cpu", "--out", out]))
    model = tmp_path / "ts-model"
    command_ok("finetune", ["--data", stores[PATCHES[0]], "--arch", "pixel", "--init", pkg, "--classifier",
                            "linear", "--smooth", "0", "--max-pixels", "500", "--out", model])
    emb = read_meta(model)["architecture"]["features"]["embedding"]
    assert emb["kind"] == "series" and emb["family"] == "series" and emb["dim"] == 64
    _, inp, x, feats = pixel_embeddings(model, stores[PATCHES[0]], 200, 64)
    values, bands = series_from_blocks(x.numpy(), inp.blocks)
    ref = load_series_package(pkg).embed(values, bands, inp.calendar.months(inp.year))
    assert torch.allclose(feats, ref, atol=1e-5)
    d = shared_data / PATCHES[1]
    command_ok("predict", ["--model", model, "--s2", d / "s2", "--s1", d / "s1", "--out", tmp_path / "m.tif",
                           "--devices", "cpu"])


def test_a_sensor_with_few_dates_fills_its_other_periods(shared_data: Path, tmp_path: Path) -> None:
    """A season of Sentinel-2 with a single Sentinel-1 acquisition: the model trains (S1's other months are filled
    along time) and a later input must cover only the periods the training data observed."""
    d = shared_data / PATCHES[0]
    s1 = sorted((d / "s1").glob("*.tif"))[20]  # one S1 date, in 2018
    store = tmp_path / "store"
    prepare_ok(["--s2", d / "s2", "--s1", s1, "--parcels", d / "parcels.gpkg", "--class-field", "ct_name",
                "--out", store])
    model = tmp_path / "model"
    command_ok("finetune", ["--data", store, "--arch", "pixel", "--classifier", "linear", "--max-pixels", "500",
                            "--out", model])
    blocks = read_meta(model)["architecture"]["features"]["input"]["blocks"]
    s1_block = next(b for b in blocks if b["sensor"] == "s1")
    assert sum(s1_block["observed"]) == 1 and all(next(b for b in blocks if b["sensor"] == "s2")["observed"])
    command_ok("predict", ["--model", model, "--s2", d / "s2", "--s1", s1, "--out", tmp_path / "m.tif",
                           "--devices", "cpu"])
