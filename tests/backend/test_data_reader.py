"""The one read of a store (:mod:`backend.data.reader`) gives exactly the arrays a plain numpy read of the store
gives, through every dataset built on it: the fine-tuning windows (model channels by name, in the model's order, at
the chosen date or as a composite, standardised with the model's statistics, labels of the split and label fraction),
the pre-training crops (every band and date, the store's statistics) and chips. Exact equality, not closeness: the
datasets must keep giving the same tensors (real data: the Flanders cube, 36 S2 dates with clouds, 40 S1 dates)."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest

from backend.data.chipstore import SPLITS, ChipStore
from backend.data.datasets import ChipDataset, RandomCropDataset, SlidingWindowDataset
from backend.data.dates import COMPOSITE, choose_date, composite_of
from backend.data.labelled import Chips, CubeCrops, CubeReader, CubeWindows, draw_fraction, split_parcels, store_stats
from backend.models.inputs import match_channels, spec_from_stats
from tests.backend.data_helpers import prepare_ok, prepared_store

CHANNELS = [("s1", "VH"), ("s2", "B08"), ("s2", "B02"), ("s1", "VV"), ("s2", "B11")]  # mixed sensors, not store order


@pytest.fixture(scope="module")
def cube(shared_data, tmp_path_factory) -> ChipStore:
    d = shared_data / "worldcereal_flanders_2018"
    if not d.exists():
        pytest.skip(f"{d} is absent: the real Flanders cube of ../shared/data is needed")
    return prepared_store(tmp_path_factory, "cube",
                           ["--s2", d / "s2", "--s1", d / "s1", "--parcels", d / "parcels.gpkg", "--class-field",
                            "ct_name", "--val-fraction", "0.3"])


def _model_window(store, spec, picks, choice, split, keep, r, c, size):
    """What a model reads at (r, c), straight from the arrays: (x, label, valid)."""
    sl = (slice(r, r + size), slice(c, c + size))
    x = np.zeros((len(picks), size, size), np.float32)
    valid = np.ones((size, size), bool)
    for k, (s, i) in enumerate(picks):
        values = np.asarray(store.array(s)[sl], np.float32)  # (h, w, T, C)
        ok = np.asarray(store.array(f"{s}_valid")[sl]).astype(bool)  # (h, w, T)
        if choice.composite is not None:
            band, v = composite_of(values[..., [i]], ok)
            x[k], ok = band[..., 0], v
        else:
            x[k], ok = values[:, :, choice.index[s], i], ok[:, :, choice.index[s]]
        valid &= ok
    x = (x - spec.mean[:, None, None]) / spec.std[:, None, None]
    x[:, ~valid] = 0
    label = np.asarray(store.array("labels")[sl], np.int64).copy()
    keep_px = (np.asarray(store.array("split")[sl]) == SPLITS[split]) & valid
    if keep is not None:
        p = np.asarray(store.array("parcels")[sl])
        keep_px &= (p >= 0) & keep[np.clip(p, 0, None)]
    label[~keep_px] = -1
    return x, label, valid


@pytest.mark.parametrize("date", [None, COMPOSITE])
def test_model_windows_equal_the_store(cube, date):
    spec = spec_from_stats(CHANNELS, store_stats(cube))
    picks = match_channels(CHANNELS, {s: cube.bands(s) for s in cube.sensors}, "the store")
    choice = choose_date(cube, spec.sensors, date)
    ids, cls, n = split_parcels(cube, "train")
    keep = np.zeros(n, bool)
    keep[ids[draw_fraction(cls, 0.5, seed=3)]] = True
    reader = CubeReader(cube, spec, picks, choice, "train", keep)
    h, w = cube.shape
    labelled = 0
    for r, c in [(0, 0), (h - 24, w - 24), (h // 3, w // 2)]:
        x, label, valid = reader.read(r, c, 24)
        ex, elabel, evalid = _model_window(cube, spec, picks, choice, "train", keep, r, c, 24)
        assert x.dtype == np.float32 and label.dtype == np.int64
        np.testing.assert_array_equal(x, ex)
        np.testing.assert_array_equal(label, elabel)
        np.testing.assert_array_equal(valid, evalid)
        labelled += int((label >= 0).sum())
    assert labelled > 0  # some pixels keep their label: the comparison is not of empty maps
    windows = CubeWindows(CubeReader(cube, spec, picks, choice, "val"), 48)
    for i in (0, len(windows) - 1):
        item = windows[i]
        r, c = item["pos"].tolist()
        ex, elabel, _ = _model_window(cube, spec, picks, choice, "val", None, r, c, 48)
        np.testing.assert_array_equal(item["x"].numpy(), ex)
    crops = CubeCrops(CubeReader(cube, spec, picks, choice, "train"), 32, 4, seed=0)
    assert all(crops[i]["x"].shape == (len(CHANNELS), 32, 32) for i in range(2))


def _crop(store, sensor, r, c, size, t=slice(None), normalize=True):
    x = np.array(store.array(sensor)[r:r + size, c:c + size, t], np.float32)  # (h, w, T, C)
    v = np.asarray(store.array(f"{sensor}_valid")[r:r + size, c:c + size, t]).astype(bool)
    if normalize:
        mean, std = store.mean_std(sensor)
        x = (x - mean) / std
    x[~v] = 0
    return x.transpose(2, 3, 0, 1), v.transpose(2, 0, 1)


def test_pretraining_crops_equal_the_store(cube):
    for ds in (RandomCropDataset(cube, size=24, length=4, dates="all", seed=0, split="train"),
               SlidingWindowDataset(cube, size=40, stride=200)):
        for i in range(min(len(ds), 4)):
            item = ds[i]
            r, c = item["pos"].tolist()
            for sensor in ("s2", "s1"):
                ex, ev = _crop(cube, sensor, r, c, ds.size)
                np.testing.assert_array_equal(item[sensor].numpy(), ex)
                np.testing.assert_array_equal(item[f"{sensor}_valid"].numpy(), ev)
    ds = RandomCropDataset(cube, size=24, length=6, dates="random", seed=1, normalize=False)
    day = {s: {dt.date.fromisoformat(d).timetuple().tm_yday: k for k, d in enumerate(cube.dates(s))}
           for s in ("s2", "s1")}
    for i in range(len(ds)):
        item = ds[i]
        r, c = item["pos"].tolist()
        for sensor in ("s2", "s1"):  # one date each: the S1 date nearest to the S2 date drawn
            t = day[sensor][int(item[f"{sensor}_doy"][0])]
            ex, ev = _crop(cube, sensor, r, c, 24, slice(t, t + 1), normalize=False)
            np.testing.assert_array_equal(item[sensor].numpy(), ex)
            np.testing.assert_array_equal(item[f"{sensor}_valid"].numpy(), ev)


def test_chips_equal_the_store(shared_data, tmp_path):
    src = shared_data / "eurosat_ms_train"
    if not src.exists():
        pytest.skip(f"{src} is absent: the real EuroSAT-MS chips of ../shared/data are needed")
    root = tmp_path / "src"
    for c in ("Forest", "River"):
        (root / c).mkdir(parents=True)
        for f in sorted((src / c).glob("*.tif"))[:3]:
            shutil.copy(f, root / c / f.name)
    prepare_ok(["--chips", root, "--out", tmp_path / "chips"])
    store = ChipStore(tmp_path / "chips")
    mean, std = store.mean_std("s2")
    every = ChipDataset(store)
    channels = [("s2", "B08"), ("s2", "B04"), ("s2", "B03")]
    spec = spec_from_stats(channels, store_stats(store))
    index = [store.bands("s2").index(b) for _, b in channels]
    model = Chips(store, spec, index, np.arange(len(every)))
    for j in range(len(every)):
        raw = np.asarray(store.array("chips")[j], np.float32)
        np.testing.assert_array_equal(every[j]["s2"][0].numpy(), (raw - mean[:, None, None]) / std[:, None, None])
        np.testing.assert_array_equal(model[j]["x"].numpy(),
                                      (raw[index] - spec.mean[:, None, None]) / spec.std[:, None, None])
        assert int(model[j]["label"]) == int(every[j]["label"]) == int(store.array("chip_labels")[j])
