"""What ``evaluate`` and its ``compare`` protocol (:mod:`backend.train.compare`) share: the lists of the command line,
the one device, each init's input and report label, and the frozen-feature probes (pooled chip features, per-pixel
features, the weighted kNN vote, a trained head, t-SNE)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from backend.data.chipstore import ChipStore
from backend.data.labelled import Chips, CubeWindows, store_channels, store_stats
from backend.devices import resolve_device
from backend.errors import EoSslError
from backend.models.classifier import build_head
from backend.models.inputs import InputSpec, match_channels, spec_from_stats
from backend.report import html as report_html
from backend.train import finetune as ft
from backend.train import runner
from backend.train.init_source import InitSource, load_inits

KNN_TEMPERATURE = 0.07


def parse_list(text: str | None, kind: type, option: str, minimum: float = 1) -> list:
    """A comma-separated list of numbers >= ``minimum`` (sorted, unique), or [] for None."""
    if not text:
        return []
    try:
        values = sorted({kind(v) for v in str(text).split(",") if v.strip()})
    except ValueError as exc:
        raise EoSslError("bad_argument", f"{option} {text!r} is not a list of numbers.",
                         f"Use e.g. {option} 2,5,10.") from exc
    if not values or min(values) < minimum:
        raise EoSslError("bad_argument", f"{option} {text!r}: every value must be at least {minimum:g}.",
                         f"Use e.g. {option} 2,5,10.")
    return values


def parse_fractions(text: str) -> list[float]:
    try:
        values = sorted({float(v) for v in str(text).split(",") if v.strip()}, reverse=True)
    except ValueError as exc:
        raise EoSslError("bad_argument", f"--label-fractions {text!r} is not a list of numbers.",
                         "Use e.g. --label-fractions 1,0.5,0.1,0.01.") from exc
    if not values or any(not 0 < v <= 1 for v in values):
        raise EoSslError("bad_argument", f"--label-fractions {text!r}: each fraction must be in (0, 1].",
                         "Use e.g. --label-fractions 1,0.5,0.1,0.01.")
    return values


# -- features ---------------------------------------------------------------------------------------------------------
def one_device(cfg: runner.TrainConfig) -> torch.device:
    """The device of ``evaluate`` and its ``compare`` protocol: one, never DDP."""
    choice = resolve_device(cfg.devices, cfg.strategy, cfg.precision, cfg.num_nodes)
    if choice.world_size > 1:  # DDP would re-run the whole evaluation in every process
        raise EoSslError("bad_argument", f"--devices {cfg.devices}: evaluate runs on one device.",
                         "Use --devices auto, cpu or 1 (each fine-tune of the finetune protocol is short).")
    return choice.torch_device


@torch.no_grad()
def chip_features(net: torch.nn.Module, dataset: Any, device: torch.device, batch_size: int = 64
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(N, F) frozen pooled features and (N,) labels of a chip dataset."""
    net.eval().to(device)
    feats, labels = [], []
    for batch in torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False):
        feats.append(net.features(batch["x"].to(device)).float().cpu())  # type: ignore[operator]
        labels.append(batch["label"])
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


@torch.no_grad()
def pixel_features(net: torch.nn.Module, windows: CubeWindows, device: torch.device, max_pixels: int,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel frozen features of up to ``max_pixels`` labelled pixels, sampled evenly over the windows:
    ((N, F) features bilinearly sampled from the encoder's deepest map, (N,) labels, (N,) parcel indices)."""
    net.eval().to(device)
    rng = np.random.default_rng(seed)
    per_window = max(1, max_pixels // max(1, len(windows)))
    parcels_arr = windows.reader.store.array("parcels")
    feats, labels, parcels = [], [], []
    for i in range(len(windows)):
        item = windows[i]
        label = item["label"].numpy()
        rows, cols = np.nonzero(label >= 0)
        if rows.size == 0:
            continue
        pick = rng.choice(rows.size, size=min(per_window, rows.size), replace=False)
        rows, cols = rows[pick], cols[pick]
        fmap = net.features(item["x"][None].to(device)).float()  # type: ignore[operator]
        size = label.shape[0]
        grid = torch.from_numpy(np.stack([(cols + 0.5) / size * 2 - 1, (rows + 0.5) / size * 2 - 1], -1))
        grid = grid.float().to(device)[None, None]  # (1, 1, N, 2) in [-1, 1], x first
        sampled = F.grid_sample(fmap, grid, mode="bilinear", align_corners=False)[0, :, 0].T  # (N, F)
        feats.append(sampled.cpu().numpy())
        labels.append(label[rows, cols])
        r0, c0 = (int(v) for v in item["pos"])
        parcels.append(np.asarray(parcels_arr[r0:r0 + size, c0:c0 + size])[rows, cols])
    if not feats:
        raise EoSslError("no_samples", f"No labelled {windows.reader.split} pixel with valid imagery.",
                         "Check the parcels and the split of the store.")
    return np.concatenate(feats), np.concatenate(labels).astype(np.int64), np.concatenate(parcels)


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int, k: int = 20,
                temperature: float = KNN_TEMPERATURE) -> np.ndarray:
    """Weighted kNN vote on cosine similarity (weights exp(sim / T)): lightly's ``knn_predict``, in chunks of 1024
    test rows, k capped at the number of training rows. Its class order comes from a sort of the vote scores, so an
    exact tie of two classes' scores could pick another class than an argmax would; on the features of a seeded
    resnet18 over the EuroSAT-MS chips it gives the same predictions as the hand-written vote it replaced
    (``tests/backend/test_evaluate_eurosat.py``)."""
    from lightly.utils.benchmarking import knn_predict as lightly_knn

    bank = F.normalize(torch.from_numpy(train_x).float(), dim=1).T.contiguous()
    te = F.normalize(torch.from_numpy(test_x).float(), dim=1)
    ty = torch.from_numpy(np.asarray(train_y)).long()
    k = max(1, min(k, bank.shape[1]))
    out = [lightly_knn(te[i:i + 1024], bank, ty, num_classes, k, temperature)[:, 0] for i in range(0, len(te), 1024)]
    return torch.cat(out).numpy()


def train_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int, head: str,
                epochs: int = 100, lr: float = 1e-3, seed: int = 0, batch_size: int = 256) -> np.ndarray:
    """A head trained on frozen, standardised features; returns the predicted classes of ``test_x``."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mean, std = train_x.mean(0, keepdims=True), train_x.std(0, keepdims=True) + 1e-6
    x = torch.from_numpy((train_x - mean) / std).float()
    y = torch.from_numpy(train_y).long()
    model = build_head(head, x.shape[1], num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    bs = min(batch_size, len(x))
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), bs):
            sel = order[i:i + bs]
            if len(sel) < 2 and head == "mlp":  # BatchNorm needs two samples
                continue
            loss = F.cross_entropy(model(x[sel]), y[sel])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy((test_x - mean) / std).float()).argmax(1).numpy()


def tsne(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2D t-SNE of ``features`` (the first two principal components when there are too few points for t-SNE)."""
    from sklearn.manifold import TSNE

    n = len(features)
    if n < 8:
        centred = features - features.mean(0, keepdims=True)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        return (u[:, :2] * s[:2]) if u.shape[1] >= 2 else np.pad(u * s, ((0, 0), (0, 1)))
    perplexity = float(max(2.0, min(30.0, (n - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        features.astype(np.float32))


# -- inits ------------------------------------------------------------------------------------------------------------
def input_specs(store: ChipStore, inits: list[InitSource], warn: Any) -> list[tuple[InputSpec, list[tuple[str, int]]]]:
    """Each init's input; ``random`` reads the first package's bands (store statistics), else all the store's."""
    first_pkg = next((i for i in inits if i.meta is not None), None)
    out = []
    for init in inits:
        if init.meta is None and first_pkg is not None:
            ref_spec, _ = ft.input_spec(store, first_pkg, lambda *a: None)
            spec = spec_from_stats(ref_spec.channels, store_stats(store))
            available, _ = store_channels(store)
            out.append((spec, match_channels(spec.channels, available, f"the data in {store.path}")))
        else:
            out.append(ft.input_spec(store, init, warn))
    return out


class Contest(NamedTuple):
    """What ``evaluate`` and ``compare`` score: the labelled store, its task, the inits with their report labels and
    inputs, and the one device."""

    store: ChipStore
    task: str
    inits: list[InitSource]
    labels: list[str]
    specs: list[tuple[InputSpec, list[tuple[str, int]]]]
    device: torch.device


def load_contest(args: Any, names: list[str], cfg: runner.TrainConfig, warn: Any) -> Contest:
    """The store ``--data`` (its task: ``--task``, else its default), the inits ``names`` (``--encoder`` for random
    ones), each init's label and input, and the device of ``cfg``."""
    store = ChipStore(args.data)
    inits = load_inits(names, args.encoder, warn)
    return Contest(store, args.task or ft.default_task(store), inits, unique_labels(inits),
                   input_specs(store, inits, warn), one_device(cfg))


def all_train_chips(base: ft.TaskData) -> Any:
    """The training chips of ``base`` without augmentation (features of every chip, once)."""
    train: Chips = base.train  # type: ignore[assignment]
    return Chips(train.store, train.spec, train.channel_index, train.indices, train=False)


def unique_labels(inits: list[InitSource]) -> list[str]:
    """A report label for each init (``random``, or method: package name), made unique with primes."""
    labels: list[str] = []
    for init in inits:
        label = "random" if init.kind == "random" else (
            f"{(init.meta or {}).get('method') or 'weights'}: {init.path.name if init.path else ''}")
        while label in labels:
            label += "'"
        labels.append(label)
    return labels


def json_default(value: Any) -> Any:
    """``json.dumps``'s ``default`` for numpy numbers and arrays in a report."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_report(folder: Path, report: dict[str, Any], images: dict[str, Any]) -> None:
    """``report.json`` and ``report.html`` of an evaluation into its temporary ``folder``; the fine-tunes' run folders
    (``.runs``) go."""
    (folder / "report.json").write_text(json.dumps(report, indent=1, default=json_default))
    (folder / "report.html").write_text(report_html.render(report, images), encoding="utf-8")
    shutil.rmtree(folder / ".runs", ignore_errors=True)
