"""Helpers shared by the pixel classifier tests (test_pixel_classifier.py, test_calendar.py): a model applied to the
prepared cube directly, the reference a predicted map is checked against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch

from backend.data.chipstore import ChipStore
from backend.pixel.data import labelled_pixels, read_inputs


def direct_map(model: Path, store: Path) -> tuple[Any, ChipStore, np.ndarray]:
    """(the loaded network, the store, its classes over the whole cube) of the pixel model ``model`` applied to the
    prepared ``store`` in one piece."""
    from backend.predict.scene import load_model

    _, net = load_model(model)
    cube = ChipStore(store)
    h, w = cube.shape
    x = torch.from_numpy(read_inputs(cube, net.features.inp, slice(0, h), slice(0, w)))[None]
    with torch.no_grad():
        return net, cube, net(x)[0].argmax(0).numpy()


def read_map(path: Path) -> np.ndarray:
    """Band 1 of a predicted map."""
    with rasterio.open(path) as src:
        return src.read(1)


def pixel_embeddings(model: Path, store: Path, every: int, dim: int) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
    """(network, its input, the inputs, the embedding features) of every ``every``-th of the first 1400 training
    pixels of ``store``: the last ``dim`` features the pixel model ``model`` computes for them."""
    from backend.predict.scene import load_model

    _, net = load_model(model)
    inp = net.features.inp
    px = labelled_pixels(ChipStore(store), inp, "train").take(np.arange(0, 1400, every))
    x = torch.from_numpy(read_inputs(ChipStore(store), inp, px.rows, px.cols))
    with torch.no_grad():
        return net, inp, x, net.features(x[:, :, None, None])[:, -dim:, 0, 0]
