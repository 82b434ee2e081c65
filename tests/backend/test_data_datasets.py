"""torch Datasets over chip stores: values equal the store's raw arrays normalised, DataLoader workers give the same
samples, and a split filter sets the labels of the other splits to -1."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from backend.data.chipstore import ChipStore
from backend.data.datasets import ChipDataset, RandomCropDataset, SlidingWindowDataset
from backend.errors import EoSslError
from tests.backend.data_helpers import prepared_store


@pytest.fixture(scope="module")
def cube(shared_data, tmp_path_factory) -> ChipStore:
    d = shared_data / "worldcereal_flanders_2018"
    return prepared_store(tmp_path_factory, "cube",
                           ["--s2", d / "s2", "--s1", d / "s1", "--parcels", d / "parcels.gpkg", "--class-field",
                            "ct_name", "--val-fraction", "0.3", "--test-fraction", "0.2"])


@pytest.fixture(scope="module")
def chips(shared_data, tmp_path_factory) -> ChipStore:
    root = tmp_path_factory.mktemp("chips_src")
    for c in ("Forest", "River", "SeaLake"):
        (root / c).mkdir()
        for f in sorted((shared_data / "eurosat_ms_train" / c).glob("*.tif"))[:5]:
            shutil.copy(f, root / c / f.name)
    return prepared_store(tmp_path_factory, "chips", ["--chips", root])


def _expected(store: ChipStore, sensor: str, r: int, c: int, size: int, t_idx=None, normalize=True):
    """(T, C, h, w) normalised values with 0 where invalid, (T, h, w) validity, straight from the arrays."""
    x = np.array(store.array(sensor)[r:r + size, c:c + size], np.float32)  # (h, w, T, C), a copy
    v = np.asarray(store.array(f"{sensor}_valid")[r:r + size, c:c + size]).astype(bool)  # (h, w, T)
    if t_idx is not None:
        x, v = x[:, :, t_idx], v[:, :, t_idx]
    if normalize:
        mean, std = store.mean_std(sensor)
        x = (x - mean) / std
    x[~v] = 0
    return x.transpose(2, 3, 0, 1), v.transpose(2, 0, 1)


def _check_sample(store: ChipStore, x: dict, size: int, normalize: bool = True):
    r, c = x["pos"].tolist()
    for sensor in ("s2", "s1"):
        exp, valid = _expected(store, sensor, r, c, size, normalize=normalize)
        np.testing.assert_allclose(x[sensor].numpy(), exp, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(x[f"{sensor}_valid"].numpy(), valid)
    np.testing.assert_array_equal(x["label"].numpy(), store.array("labels")[r:r + size, c:c + size])
    np.testing.assert_array_equal(x["aoi"].numpy(), store.array("aoi")[r:r + size, c:c + size].astype(bool))


def test_random_crops_equal_the_store_arrays(cube):
    ds = RandomCropDataset(cube, size=20, length=10, dates="all", seed=0)
    positions = set()
    for i in range(len(ds)):
        x = ds[i]
        assert x["s2"].dtype == torch.float32 and x["label"].dtype == torch.int64
        _check_sample(cube, x, 20)
        positions.add(tuple(x["pos"].tolist()))
    assert len(positions) > 5
    raw = RandomCropDataset(cube, size=20, length=3, dates="all", seed=0, normalize=False)
    for i in range(len(raw)):
        _check_sample(cube, raw[i], 20, normalize=False)
    # seeded: the same crop every time; another epoch, another draw
    a, b = ds[4], ds[4]
    assert torch.equal(a["s2"], b["s2"]) and torch.equal(a["pos"], b["pos"])
    ds.set_epoch(1)
    assert any(not torch.equal(ds[i]["pos"], RandomCropDataset(cube, 20, 10, dates="all", seed=0)[i]["pos"])
               for i in range(10))


def test_sliding_windows_cover_the_grid_and_equal_the_store(cube):
    ds = SlidingWindowDataset(cube, size=24, stride=20)
    h, w = cube.shape
    rows = sorted({r for r, _ in ds.positions})
    assert rows[0] == 0 and rows[-1] == h - 24  # the last window is flush with the edge
    covered = np.zeros(cube.shape, bool)
    for i in range(len(ds)):
        x = ds[i]
        _check_sample(cube, x, 24)
        r, c = x["pos"].tolist()
        covered[r:r + 24, c:c + 24] = True
    assert covered.all()


def test_chip_dataset_equals_the_store(chips):
    ds = ChipDataset(chips)
    assert len(ds) == 15
    mean, std = chips.mean_std("s2")
    for i in (0, 7, 14):
        x = ds[i]
        exp = (np.asarray(chips.array("chips")[i], np.float32) - mean[:, None, None]) / std[:, None, None]
        assert x["s2"].shape == (1, 13, 64, 64)
        np.testing.assert_allclose(x["s2"][0].numpy(), exp, rtol=1e-6, atol=1e-6)
        assert x["label"].item() == chips.array("chip_labels")[i]
    val = ChipDataset(chips, split="val")
    assert 0 < len(val) < len(ds)
    assert all(chips.array("chip_split")[j] == 2 for j in val.indices)


def _collate_same(loader: DataLoader, ds, batch_size: int):
    n = 0
    for batch in loader:
        for k in range(len(batch["s2"])):
            single = ds[n]
            for key, value in single.items():
                assert torch.equal(batch[key][k], value), key
            n += 1
    assert n == len(ds)


def test_dataloader_with_two_workers_gives_the_same_samples(cube, chips):
    for ds in (RandomCropDataset(cube, size=16, length=12, seed=5),
               SlidingWindowDataset(cube, size=32, stride=16, dates="all"),
               ChipDataset(chips)):
        loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
        _collate_same(loader, ds, 4)


@pytest.mark.parametrize("split", ["train", "val"])
def test_split_filter_sets_other_splits_to_ignore(cube, split):
    code = {"train": 1, "val": 2}[split]
    labels, split_arr = cube.array("labels"), cube.array("split")
    assert (split_arr == code).any()
    for ds in (RandomCropDataset(cube, size=16, length=16, dates="random", split=split, seed=1),
               SlidingWindowDataset(cube, size=16, stride=8, split=split)):
        assert len(ds) > 0
        for i in range(len(ds)):
            x = ds[i]
            r, c = x["pos"].tolist()
            lab, spl = labels[r:r + 16, c:c + 16], split_arr[r:r + 16, c:c + 16]
            assert (spl == code).any(), "a crop without a pixel of its split"
            expected = np.where(spl == code, lab, -1)
            np.testing.assert_array_equal(x["label"].numpy(), expected)
    # the other splits' parcels are there but hidden
    assert ((labels >= 0) & (split_arr != code)).any()


def test_dataset_errors(cube, chips):
    with pytest.raises(EoSslError) as e:
        ChipDataset(cube)
    assert e.value.code == "wrong_store_kind"
    with pytest.raises(EoSslError) as e:
        RandomCropDataset(chips)
    assert e.value.code == "wrong_store_kind"
    with pytest.raises(EoSslError) as e:
        RandomCropDataset(cube, size=65)
    assert e.value.code == "crop_too_large"


@pytest.mark.parametrize(("dates", "split"), [("random", None), ("all", "train")])
def test_whole_batches_as_stored_standardise_to_the_samples(cube, dates, split):
    """A batch read in one call, values as stored (uint16 Sentinel-2 with cloudy dates, float32 Sentinel-1), and
    standardised afterwards equals the collated samples of the same indices."""
    from torch.utils.data import default_collate

    from backend.data.datasets import RawBatch, standardize

    ds = RandomCropDataset(cube, size=16, length=64, dates=dates, split=split, seed=3)
    indices = [0, 5, 7, 11, 30]
    expected = default_collate([ds[i] for i in indices])
    ds.raw_batches = True
    raw = ds.__getitems__(indices)
    # uint16 Sentinel-2 travels as int16 (same bits: a GPU copies int16), float32 Sentinel-1 as it is
    assert isinstance(raw, RawBatch) and raw["s2"].dtype == torch.int16 and raw["s2_unsigned"].all()
    assert raw["s1"].dtype == torch.float32 and "s1_unsigned" not in raw
    got = standardize(raw)
    assert "s2_mean" in raw and "s2_mean" not in got  # the raw batch is left as it was
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key].shape == value.shape and got[key].dtype == value.dtype, key
        if value.is_floating_point():
            np.testing.assert_allclose(got[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(got[key].numpy(), value.numpy())
    if dates == "all":
        assert (~expected["s2_valid"]).any()  # clouds: the zeroing of invalid pixels was exercised


def test_whole_batches_cross_worker_processes(cube):
    from backend.data.datasets import collate, standardize

    ds = RandomCropDataset(cube, size=16, length=24, dates="random", seed=4)
    ds.raw_batches = True
    in_process = [standardize(b) for b in DataLoader(ds, batch_size=8, collate_fn=collate)]
    workers = [standardize(b) for b in DataLoader(ds, batch_size=8, num_workers=2, collate_fn=collate)]
    for a, b in zip(in_process, workers, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


def test_training_loader_reads_whole_batches(cube):
    """The pre-training loader on a CPU: whole batches as stored, read in the main process (the fastest measured,
    benchmarks/results/data_loading.md); the bands a run uses are picked from them and standardised as the samples
    of ``backend.data.pretraining`` are."""
    from torch.utils.data import default_collate

    from backend.data.datasets import RawBatch, standardize
    from backend.data.pretraining import build_ssl_data
    from backend.train import runner

    data = build_ssl_data([cube.path], need_s1=True, crop=16, epoch_length=16, s2_bands=["B04", "B08", "B11"])
    cfg = runner.TrainConfig(batch_size=8, seed=0)
    loader = runner.make_loader(data.dataset, cfg, runner.resolve_device("cpu"))
    assert loader.num_workers == 0 and data.dataset.raw_batches
    batch = next(iter(loader))
    assert isinstance(batch, RawBatch) and batch["s2"].shape == (8, 16, 16, 3)
    got = standardize(batch)
    assert got["s2"].shape == (8, 3, 16, 16) and got["s1"].shape == (8, 2, 16, 16)
    data.dataset.base.seed = 9  # the same crops both ways
    indices = [1, 2, 3]
    expected = default_collate([data.dataset[i] for i in indices])
    got = standardize(data.dataset.__getitems__(indices))
    for key in ("s2", "s1"):
        np.testing.assert_allclose(got[key].numpy(), expected[key].numpy(), rtol=1e-5, atol=1e-5)


def test_uint16_viewed_as_int16_converts_back():
    from backend.models import float32_of

    values = torch.tensor([0, 1, 32767, 32768, 40000, 65535], dtype=torch.uint16)
    expected = torch.tensor([0, 1, 32767, 32768, 40000, 65535], dtype=torch.float32)
    assert torch.equal(float32_of(values), expected)
    assert torch.equal(float32_of(values.view(torch.int16), unsigned=True), expected)
    # what the GPU path computes: int16 -> float32, then back into 0..65535
    assert torch.equal(values.view(torch.int16).to(torch.float32).remainder_(65536.0), expected)
