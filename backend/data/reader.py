"""The one read of a chip store that every Dataset is built on (numpy and memory maps only: no GIS library).

A window of a cube is read in one way whoever reads it: the bands asked for (by index into the store's bands of a
sensor, matched by name before: :func:`backend.models.inputs.match_channels`), at the dates asked for, as float32
(T, C, h, w) (:func:`cube_values`), its validity (:func:`cube_valid`), and its labels of a split and label fraction
(:func:`cube_labels`); a chip likewise (:func:`chip_values`). Values are standardised by an
:class:`~backend.models.inputs.InputSpec`: the model's statistics (fine-tuning, :mod:`backend.data.labelled`) or the
store's own (pre-training, :mod:`backend.data.datasets`: :func:`store_spec`).

The datasets on top differ only in what they sample (random crops, windows, chips) and what they return. The batched
reads of pre-training (:class:`backend.data.datasets.RawBatch`) copy stored values as they are, to be standardised on
the device with the same statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backend.data.chipstore import SPLITS, ChipStore
from backend.models.inputs import InputSpec

Window = tuple[slice, slice]


def window(row: int, col: int, size: int) -> Window:
    return slice(row, row + size), slice(col, col + size)


def store_spec(store: ChipStore, sensor: str) -> InputSpec:
    """Every band of ``sensor`` in the store's order, with the store's statistics."""
    mean, std = store.mean_std(sensor)
    return InputSpec([(sensor, b) for b in store.bands(sensor)], mean, std)


def cube_values(store: ChipStore, sensor: str, win: Window, dates: slice = slice(None),
                bands: Sequence[int] | None = None) -> np.ndarray:
    """(T, C, h, w) float32 values of ``sensor``'s ``bands`` (None: all) at ``dates`` over ``win``, as stored. The
    window is a view of the memory map until it is copied, once, into its output layout."""
    src = store.array(sensor)[win[0], win[1], dates]  # (h, w, T, C) view
    if bands is not None and list(bands) != list(range(src.shape[3])):
        src = src[:, :, :, list(bands)]
    x = np.empty((src.shape[2], src.shape[3], src.shape[0], src.shape[1]), np.float32)
    x[...] = src.transpose(2, 3, 0, 1)
    return x


def cube_valid(store: ChipStore, sensor: str, win: Window, dates: slice = slice(None)) -> np.ndarray:
    """(T, h, w) bool: where ``sensor`` has a valid observation."""
    return np.array(store.array(f"{sensor}_valid")[win[0], win[1], dates].transpose(2, 0, 1), dtype=bool, order="C")


def cube_labels(store: ChipStore, win: Window, split: str | None = None,
                keep_parcels: np.ndarray | None = None) -> np.ndarray:
    """(h, w) int64 class ids; -1 outside parcels, in other splits than ``split`` and, with ``keep_parcels`` (a
    boolean per parcel index: a label fraction), in parcels left out."""
    label = np.array(store.array("labels")[win], dtype=np.int64)
    if split is not None:
        label[np.asarray(store.array("split")[win]) != SPLITS[split]] = -1
    if keep_parcels is not None:
        p = np.asarray(store.array("parcels")[win])
        label[~((p >= 0) & keep_parcels[np.clip(p, 0, None)])] = -1
    return label


def chip_values(store: ChipStore, j: int, channels: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """(C, H, W) float32 copy of chip ``j``'s ``channels`` (None: all), as stored."""
    x = np.asarray(store.array("chips")[j])
    return np.array(x if channels is None else x[np.asarray(channels)], np.float32)
