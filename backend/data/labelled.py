"""Labelled data for fine-tuning and evaluation (``finetune``, ``evaluate``, ``compare``): which labels (label
fractions), and the Datasets that read a store in a model's inputs.

- **Date.** A single-date model reads one acquisition of a cube, chosen by :func:`backend.data.dates.choose_date`
  (the rule ``predict`` applies to source scenes too); ``model.json`` records it.
- **Label fractions** are drawn by parcel for a cube (``parcels.npy`` + ``split.npy``: a parcel's pixels are all in
  or all out) and by chip for a chip store; stratified by class (every class keeps at least one parcel / chip),
  seeded, and nested: the parcels kept at fraction 0.25 are a subset of those kept at 0.5 for the same seed, so a
  label-efficiency curve compares like with like.
- **Datasets** yield ``{"x": (C, h, w) float32 normalised with the model's statistics, "label": ...}``: random
  crops (centred on labelled training pixels, flips and 90-degree rotations) and non-overlapping validation windows
  for a cube; chips for a chip store. Pixels whose input is nodata are not labelled (-1): a model cannot learn or be
  scored where it sees nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from backend.data.chipstore import ROW_CHUNK, SPLITS, ChipStore
from backend.data.dates import DateChoice, composite_of
from backend.data.reader import chip_values, cube_labels, cube_valid, cube_values, window
from backend.errors import EoSslError
from backend.models.inputs import InputSpec


# -- what the data offer ------------------------------------------------------------------------------------------
def store_channels(store: ChipStore) -> tuple[dict[str, list[str]], dict[tuple[str, str], int] | None]:
    """The store's bands per sensor, and for a chip store the chip channel of each (sensor, band)."""
    if store.kind != "chips":
        return {s: store.bands(s) for s in store.sensors}, None
    described = store.manifest.get("chips", {}).get("channels")
    if described:  # an export-dataset folder: each channel names its sensor and band
        pairs = [(str(c.get("sensor", "s2")), str(c.get("band", c.get("name")))) for c in described]
        if len(set(pairs)) == len(pairs):
            available: dict[str, list[str]] = {}
            for s, b in pairs:
                available.setdefault(s, []).append(b)
            return available, {p: i for i, p in enumerate(pairs)}
    bands = store.bands("s2")
    return {"s2": bands}, {("s2", b): i for i, b in enumerate(bands)}


def store_stats(store: ChipStore) -> dict[str, dict[str, dict[str, float]]]:
    """{sensor: {band: {mean, std}}} of the store, keyed like ``store_channels``."""
    stats = {s: {b: dict(v) for b, v in store.stats(s).items()} for s in store.sensors}
    available, index = store_channels(store)
    if index is not None and set(available) != {"s2"}:  # export-dataset channels: statistics by channel name
        names = store.bands("s2")
        by_name = stats.get("s2", {})
        stats = {}
        for (s, b), i in index.items():
            stats.setdefault(s, {})[b] = by_name[names[i]]
    return stats


def classes_of(store: ChipStore) -> list[dict[str, Any]]:
    classes = [{"id": int(c["id"]), "name": str(c["name"]), "colour": c.get("colour")} for c in store.classes]
    if len(classes) < 2:
        raise EoSslError("no_labels", f"{store.path} has {len(classes)} class(es); fine-tuning needs labels of at "
                         "least two classes.", "Prepare the store with --parcels and --class-field (or --chips).")
    if [c["id"] for c in classes] != list(range(len(classes))):
        raise EoSslError("corrupt_chipstore", f"{store.path}: class ids are not 0..{len(classes) - 1}.",
                         "Prepare the store again.")
    return classes


# -- label fractions ----------------------------------------------------------------------------------------------
def draw_fraction(class_of_item: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask over items keeping ``fraction`` of each class (at least one), seeded and nested in ``fraction``.

    Each class's items are put in one random order that depends on the seed only; a fraction keeps a prefix of
    it, so smaller fractions are subsets of larger ones.
    """
    if not 0 < fraction <= 1:
        raise EoSslError("bad_argument", f"Label fraction {fraction} is not in (0, 1].", "Use e.g. 0.1.")
    keep = np.zeros(len(class_of_item), bool)
    rng = np.random.default_rng(seed)
    for c in np.unique(class_of_item):
        idx = np.nonzero(class_of_item == c)[0]
        order = idx[rng.permutation(len(idx))]
        n = max(1, int(round(fraction * len(idx))))
        keep[order[:n]] = True
    return keep


def train_parcels(store: ChipStore) -> tuple[np.ndarray, np.ndarray, int]:
    """(parcel indices, their class) of the training split of a cube, and the number of parcel indices in the store
    (from parcels.npy / labels.npy / split.npy, read in row chunks)."""
    return split_parcels(store, "train")


def parcels_per_class(store: ChipStore, split: str) -> dict[str, int]:
    """How many parcels of each class a split of a cube holds (what a validation score rests on)."""
    _, cls, _ = split_parcels(store, split)
    return {c["name"]: int((cls == int(c["id"])).sum()) for c in store.classes}


def warn_few_validation_parcels(per_class: dict[str, int], warn: Any) -> None:
    """A validation score that rests on fewer than two parcels of a class is a rough guide: say so."""
    few = [name for name, n in per_class.items() if n < 2]
    if few and any(per_class.values()) and warn is not None:
        warn("few_validation_parcels", "The validation score rests on fewer than 2 held-out parcels for "
             f"{', '.join(few)}: read it as a rough guide (label more parcels, or prepare with a larger "
             "--val-fraction).")


def check_training_classes(per_class: dict[str, int], warn: Any, unit: str = "parcel") -> None:
    """What the training split holds, per class (``per_class``: class name -> training parcels, chips or pixels).

    A classifier needs two classes: fewer is ``one_class``, naming the classes that have none (scikit-learn
    would otherwise fail deep inside with "needs samples of at least 2 classes"). A class without any is said in a
    ``class_without_training`` warning: the package still lists it, but the model never learnt it."""
    missing = [name for name, n in per_class.items() if n == 0]
    present = [name for name, n in per_class.items() if n > 0]
    fix = ("Label training parcels of the classes named, or prepare the store again with another --seed (or --split "
           "by-parcel, or smaller --val-fraction/--test-fraction) so that each class keeps one for training.")
    if len(present) < 2:
        raise EoSslError("one_class", f"The training split holds {unit}s of {len(present)} class(es) "
                         f"({', '.join(present) or 'none'}); a classifier needs two at least. No training {unit} of: "
                         f"{', '.join(missing)}.", fix)
    if missing and warn is not None:
        warn("class_without_training", f"No training {unit} of {', '.join(missing)}: the model never learns "
             f"{'that class' if len(missing) == 1 else 'those classes'} (the package lists every class of the store, "
             f"but the map will hardly ever show {'it' if len(missing) == 1 else 'them'}). {fix}")


def split_parcels(store: ChipStore, split: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(parcel indices, their class) of a split of a cube, and the number of parcel indices in the store."""
    parcels, labels, split_arr = store.array("parcels"), store.array("labels"), store.array("split")
    if parcels is None or labels is None or split_arr is None:
        raise EoSslError("no_labels", f"{store.path} has no rasterised parcels.",
                         "Prepare the store with --parcels and --class-field.")
    cls = np.full(len(store.manifest.get("labels", {}).get("parcel_fids", [])) + 1, -1, np.int64)
    n_total = 0
    for r in range(0, parcels.shape[0], ROW_CHUNK):
        p = np.asarray(parcels[r:r + ROW_CHUNK])
        if p.size:
            n_total = max(n_total, int(p.max()) + 1)
        m = (p >= 0) & (np.asarray(split_arr[r:r + ROW_CHUNK]) == SPLITS[split])
        if not m.any():
            continue
        pp, ll = p[m], np.asarray(labels[r:r + ROW_CHUNK])[m]
        if pp.max() >= len(cls):
            cls = np.concatenate([cls, np.full(int(pp.max()) + 1 - len(cls), -1, np.int64)])
        cls[pp] = ll
    ids = np.nonzero(cls >= 0)[0]
    return ids, cls[ids], max(n_total, len(cls))


# -- cube datasets ------------------------------------------------------------------------------------------------
class CubeReader:
    """Reads model-ready windows of a cube: the model's channels at the chosen dates, normalised, with labels."""

    def __init__(self, store: ChipStore, spec: InputSpec, picks: Sequence[tuple[str, int]], dates: DateChoice,
                 split: str, keep_parcels: np.ndarray | None = None) -> None:
        self.store, self.spec, self.dates, self.split = store, spec, dates, split
        self.groups: dict[str, tuple[list[int], list[int]]] = {}  # sensor -> (band indices, output positions)
        for pos, (s, i) in enumerate(picks):
            bands, out = self.groups.setdefault(s, ([], []))
            bands.append(i)
            out.append(pos)
        self.keep_parcels = keep_parcels
        self.n_channels = len(picks)

    def read(self, r: int, c: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x (C, size, size) float32 normalised, label (size, size) int64 with -1 = ignore, valid (size, size)):
        :mod:`backend.data.reader`'s read of each sensor's channels; invalid where any sensor is."""
        sl = window(r, c, size)
        x = np.empty((self.n_channels, size, size), np.float32)
        valid = np.ones((size, size), bool)
        for s, (bands, out) in self.groups.items():
            if self.dates.composite is not None:  # every date: the per-band median of the valid ones
                values, ok = composite_of(cube_values(self.store, s, sl, bands=bands).transpose(2, 3, 0, 1),
                                          cube_valid(self.store, s, sl).transpose(1, 2, 0))
                x[out] = np.moveaxis(values, -1, 0)
                valid &= ok
                continue
            t = slice(self.dates.index[s], self.dates.index[s] + 1)
            x[out] = cube_values(self.store, s, sl, t, bands)[0]
            valid &= cube_valid(self.store, s, sl, t)[0]
        x = self.spec.normalize(x, valid)
        label = cube_labels(self.store, sl, self.split, self.keep_parcels)
        label[~valid] = -1
        return x, label, valid


def labelled_positions(reader: CubeReader, stride: int = 4) -> np.ndarray:
    """(N, 2) rows/cols (every ``stride`` px) of pixels that carry a label for ``reader``'s split and fraction."""
    store = reader.store
    labels, split, parcels = store.array("labels"), store.array("split"), store.array("parcels")
    out = []
    assert ROW_CHUNK % stride == 0
    for r in range(0, labels.shape[0], ROW_CHUNK):
        sl = slice(r, min(r + ROW_CHUNK, labels.shape[0]), stride)
        m = (np.asarray(labels[sl, ::stride]) >= 0) & (np.asarray(split[sl, ::stride]) == SPLITS[reader.split])
        if reader.keep_parcels is not None:
            p = np.asarray(parcels[sl, ::stride])
            m &= (p >= 0) & reader.keep_parcels[np.clip(p, 0, None)]
        rows, cols = np.nonzero(m)
        out.append(np.stack([r + rows * stride, cols * stride], axis=1))
    pos = np.concatenate(out) if out else np.zeros((0, 2), np.int64)
    return pos.astype(np.int64)


def augment(x: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random flips and 90-degree rotations (the same for image and labels)."""
    k = int(rng.integers(4))
    if k:
        x, label = np.rot90(x, k, axes=(-2, -1)), np.rot90(label, k, axes=(-2, -1))
    if rng.random() < 0.5:
        x, label = x[..., ::-1], label[..., ::-1]
    return np.ascontiguousarray(x), np.ascontiguousarray(label)


class WorkerRng:
    """A random generator per DataLoader worker, seeded by (seed, worker id) on first use and then advancing.

    Persistent workers keep their generator between epochs, so every epoch draws new crops and augmentations, and a
    run is reproducible for the same seed and number of workers.
    """

    seed: int = 0
    _rng: np.random.Generator | None = None

    def rng(self) -> np.random.Generator:
        if self._rng is None:
            info = torch.utils.data.get_worker_info()
            self._rng = np.random.default_rng((self.seed, info.id if info is not None else 2**16))
        return self._rng

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_rng": None}


class CubeCrops(WorkerRng, Dataset):
    """``length`` random ``size`` crops containing a labelled pixel, augmented.

    ``balance`` (default): the class is drawn first, uniformly among the classes present, then one of its labelled
    pixels: with a few polygons the pixel counts of classes differ by orders of magnitude, and a rare class (water,
    urban) would otherwise be seen in a few crops per epoch and vanish from the map. Without it: uniform over
    labelled pixels."""

    def __init__(self, reader: CubeReader, size: int, length: int, seed: int = 0, balance: bool = True) -> None:
        self.reader, self.size, self.length, self.seed = reader, size, length, seed
        self.positions = labelled_positions(reader)
        if len(self.positions) == 0:
            raise EoSslError("no_samples", f"No labelled {reader.split} pixel with valid imagery in "
                             f"{reader.store.path}.", "Check the parcels, the split and the label fraction.")
        self.height, self.width = reader.store.shape
        labels = reader.store.array("labels")
        cls = np.asarray(labels[self.positions[:, 0], self.positions[:, 1]], np.int64)
        self.by_class = [np.nonzero(cls == c)[0] for c in np.unique(cls)] if balance else [np.arange(len(cls))]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = self.rng()
        members = self.by_class[int(rng.integers(len(self.by_class)))]
        pr, pc = self.positions[members[rng.integers(len(members))]]
        # the labelled pixel lies anywhere in the crop, not always at its centre
        r = int(np.clip(pr - rng.integers(self.size), 0, self.height - self.size))
        c = int(np.clip(pc - rng.integers(self.size), 0, self.width - self.size))
        x, label, _ = self.reader.read(r, c, self.size)
        x, label = augment(x, label, rng)
        return {"x": torch.from_numpy(x), "label": torch.from_numpy(label)}


class CubeWindows(Dataset):
    """Non-overlapping ``size`` windows covering every labelled pixel of the split once (for validation).

    Windows at the right and bottom edges are moved inside the grid; the pixels they share with their neighbour
    are labelled -1 there, so every pixel is scored exactly once.
    """

    def __init__(self, reader: CubeReader, size: int) -> None:
        self.reader, self.size = reader, size
        h, w = reader.store.shape
        self.height, self.width = h, w
        labels, split = reader.store.array("labels"), reader.store.array("split")
        code = SPLITS[reader.split]
        self.windows: list[tuple[int, int, int, int]] = []  # data origin (r, c), owned origin (r, c)
        for r in range(0, h, size):
            for c in range(0, w, size):
                sl = (slice(r, r + size), slice(c, c + size))
                if not ((np.asarray(split[sl]) == code) & (np.asarray(labels[sl]) >= 0)).any():
                    continue
                self.windows.append((min(r, h - size), min(c, w - size), r, c))

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        r, c, own_r, own_c = self.windows[i]
        x, label, _ = self.reader.read(r, c, self.size)
        label[: own_r - r] = -1
        label[:, : own_c - c] = -1
        return {"x": torch.from_numpy(x), "label": torch.from_numpy(label),
                "pos": torch.tensor([r, c])}


# -- chip datasets ------------------------------------------------------------------------------------------------
class Chips(WorkerRng, Dataset):
    """Chips of a chip store with the model's channels, normalised; ``label`` is the chip's class (augmented with
    flips and rotations when ``train``)."""

    def __init__(self, store: ChipStore, spec: InputSpec, channel_index: Sequence[int], indices: np.ndarray,
                 train: bool = False, seed: int = 0) -> None:
        self.store, self.spec, self.train, self.seed = store, spec, train, seed
        self.channel_index = np.asarray(channel_index, np.int64)
        self.indices = np.asarray(indices, np.int64)
        self.labels = np.asarray(store.array("chip_labels"), np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        j = int(self.indices[i])
        x = self.spec.normalize(chip_values(self.store, j, self.channel_index))
        label = np.int64(self.labels[j])
        if self.train:
            x, _ = augment(x, np.zeros(x.shape[-2:], np.int8), self.rng())
        return {"x": torch.from_numpy(np.ascontiguousarray(x)), "label": torch.tensor(label)}


def chip_split(store: ChipStore, split: str) -> np.ndarray:
    return np.nonzero(np.asarray(store.array("chip_split")) == SPLITS[split])[0]
