"""Dense pixel-level MoCo (Embedding Earth) on the real 21-date Sentinel-2 series of tile T37MEM."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from backend.cli import main
from backend.data.datasets import RandomCropDataset
from backend.models.package import load_package
from backend.models.unet3d import TemporalSegmenter, build_backbone

T37_BANDS = "B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12"


@pytest.fixture(scope="module")
def series_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dense") / "t37mem.store"
    code = main(["prepare", "--s2", str(shared_data / "s2_timeseries_t37mem"), "--s2-bands", T37_BANDS,
                 "--poi", "2017-01-01/2018-12-31", "--resolution", "20", "--out", str(out)])
    assert code == 0
    return out


def test_a_short_run_lowers_the_loss(series_store: Path) -> None:
    import lightning.pytorch as pl

    from backend.ssl.dense_moco import DenseMoCo, DenseMoCoConfig

    torch.manual_seed(0)
    ds = RandomCropDataset(series_store, size=48, length=160, dates="all", sensors=["s2"], seed=1)
    fixed = next(iter(DataLoader(ds, batch_size=8)))
    module = DenseMoCo(DenseMoCoConfig(in_channels=10, base_width=8, depth=2, crop=32, queue_size=512, lr=0.05,
                                       momentum=0.99))
    before = copy.deepcopy(module).probe_loss(fixed)
    trainer = pl.Trainer(max_steps=40, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, DataLoader(ds, batch_size=4))
    after = copy.deepcopy(module).probe_loss(fixed)
    assert after < before - 0.05, (before, after)
    # the queue filled with keys of past steps (a few per sample) and wrapped around
    assert int(module.criterion.queue_filled) == min(512, 40 * 4 * module.config.keys_per_sample) == 512
    assert int(module.criterion.queue_ptr) == (40 * 4 * module.config.keys_per_sample) % 512


def test_command_writes_a_package_whose_backbone_segments(series_store: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dense"
    code = main(["pretrain", "--data", str(series_store), "--method", "dense-moco", "--crop", "32",
                 "--batch-size", "4", "--max-steps", "6", "--set", "base_width=8", "--set", "depth=2",
                 "--set", "queue_size=256", "--out", str(out), "--events"])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    done = events[-1]
    assert done["event"] == "done" and done["ok"]
    assert done["summary"]["method"] == "dense-moco" and done["summary"]["steps"] == 6
    assert 0 <= done["summary"]["views+correspondence share"] < 1
    meta, state = load_package(out)
    assert meta["method"] == "dense-moco" and meta["architecture"]["family"] == "unet3d"
    assert meta["input"]["dates"] == "all" and len(meta["input"]["channels"]) == 10
    assert state and all(k.startswith("temporal.") for k in state)  # projection head dropped
    backbone = build_backbone("unet3d", 10, out_channels=meta["architecture"]["out_channels"],
                              base=meta["architecture"]["base"], depth=meta["architecture"]["depth"])
    seg = TemporalSegmenter(backbone, num_classes=3)
    missing, unexpected = seg.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("head.") for k in missing)
    logits = seg(torch.randn(2, 4, 10, 32, 32), torch.randint(1, 366, (2, 4)))
    assert logits.shape == (2, 3, 32, 32)


def test_dense_moco_refuses_a_chip_store(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chips = tmp_path / "chips"
    assert main(["prepare", "--chips", str(shared_data / "eurosat_ms_train"), "--out", str(chips)]) == 0
    capsys.readouterr()
    code = main(["pretrain", "--data", str(chips), "--method", "dense-moco", "--out", str(tmp_path / "m"), "--events"])
    assert code == 2
    err = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"error"' in line][0]
    assert err["code"] == "wrong_store_kind" and err["hint"]
    assert not (tmp_path / "m" / "model.json").exists()


def test_dense_backbone_fine_tunes_and_predicts(shared_data: Path, tmp_path: Path) -> None:
    """dense-moco package -> finetune (U-Net-3D backbone + 1x1 head, parcels of Flanders) -> predict a map."""
    import rasterio

    flanders = shared_data / "worldcereal_flanders_2018"
    store = tmp_path / "flanders.store"
    assert main(["prepare", "--s2", str(flanders / "s2"), "--poi", "2018-03-01/2018-09-30", "--parcels",
                 str(flanders / "parcels.gpkg"), "--class-field", "ct_name", "--out", str(store)]) == 0
    pre, tuned = tmp_path / "dense", tmp_path / "tuned"
    assert main(["pretrain", "--data", str(store), "--method", "dense-moco", "--crop", "32", "--batch-size", "2",
                 "--max-steps", "2", "--set", "base_width=8", "--set", "depth=2", "--out", str(pre)]) == 0
    assert main(["finetune", "--data", str(store), "--init", str(pre), "--crop", "32", "--batch-size", "4",
                 "--max-steps", "3", "--out", str(tuned)]) == 0
    meta, state = load_package(tuned)
    assert meta["task"] == "segmentation" and meta["architecture"]["family"] == "unet3d"
    assert meta["provenance"]["init"]["method"] == "dense-moco"
    pre_state = load_package(pre)[1]
    # the fine-tuned backbone started from the pre-trained one: same keys, and the 1x1 head on top
    assert set(pre_state) <= set(state) and any(k.startswith("head.") for k in state)
    out = tmp_path / "map.tif"
    assert main(["predict", "--model", str(tuned), "--s2", str(flanders / "s2"), "--poi", "2018-03-01/2018-09-30",
                 "--out", str(out)]) == 0
    with rasterio.open(out) as src:
        assert (src.width, src.height) == (64, 64) and src.dtypes[0] == "uint8"
        assert set(int(v) for v in src.read(1).ravel()) <= set(range(len(meta["classes"]))) | {255}
