"""``eo-ssl embed``: per-pixel features of a pre-trained encoder as a multi-band Cloud-Optimised GeoTIFF.

The encoder of a model package (``pretrain``, ``import-weights``, ``finetune``; a timm CNN) reads its bands, normalised
with the package's statistics, from the inputs (given exactly as to ``prepare``/``predict``), on the same grid
``prepare`` would choose. Its feature pyramid (:class:`backend.pixel.features.Embedding`: strides 2..16 of a ResNet,
upsampled bilinearly to full resolution) is computed tile by tile with the same blended tiling as ``predict``
(:mod:`backend.predict.tiled`): memory stays flat however large the area.

- ``--dim K`` (default 16) keeps the first K principal components, fitted on pixels of random windows of the area
  before the pass (band ``i`` = component ``i``, most variance first); ``--dim 0`` keeps the whole pyramid.
- Several dates: the composite of the dates (per-band median over valid observations; ``--date`` picks one).
- ``--dtype float32`` (default), ``int16`` or ``uint8``: the integer types are scaled per band (GDAL scale/offset,
  which QGIS and GDAL apply when reading), from the 0.1/99.9 percentiles of the same sample, clipped; nodata is NaN,
  -32768 or 255.

Analysts feed the result to any classifier (QGIS's, SCP, dzetsaka, scikit-learn), as they do with published
satellite-embedding datasets; ``finetune --arch pixel --init PACKAGE`` uses the same features inside eo-ssl.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend import options
from backend.data.dates import choose_groups
from backend.data.prepare import resolve_inputs
from backend.devices import inference_text, resolve_device
from backend.errors import EoSslError
from backend.events import Events
from backend.models.inputs import match_channels, spec_from_meta
from backend.models.package import load_package, read_meta, weights_under
from backend.outputs import Output, abort_on_failure
from backend.pixel.features import Embedding, EmbeddingSpec
from backend.pixel.series import SeriesEmbedding
from backend.predict.strips import StripReader
from backend.predict.tiled import ReadAhead, finish_features, plan_tiles, predict_tiled
from backend.predict.writer import RasterSink
from backend.train.networks import check_tile

DTYPES = {"float32": float("nan"), "int16": -32768, "uint8": 255}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options, declared in :mod:`backend.options` (the raster inputs are prepare's)."""
    options.add_arguments(p, "embed")


class CompositeEmbedding(torch.nn.Module):
    """(B, C, H, W) input standardised by the reader with the package's statistics (one date, or the reader's
    per-band median composite of the dates) -> (B, F, H, W) embedding."""

    def __init__(self, embedding: Embedding, channels: int) -> None:
        super().__init__()
        self.embedding, self.channels = embedding, channels

    def composite(self, x: torch.Tensor) -> torch.Tensor:
        # undo the standardisation the reader applied: the Embedding standardises itself
        return x * self.embedding.in_std + self.embedding.in_mean

    def pyramid(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding.pyramid(self.composite(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.embedding(self.composite(x.float()))


def build_embedding(model_dir: str | Path, levels: list[int], dim: int | None) -> tuple[Embedding, dict[str, Any]]:
    meta, state = load_package(model_dir)
    check_encoder_family(meta, model_dir)
    arch = meta["architecture"]
    spec = spec_from_meta(meta)
    enc = weights_under(state, "encoder.")
    if not enc:
        raise EoSslError("corrupt_model", f"{model_dir} holds no encoder weights.", "Use another package.")
    emb_spec = EmbeddingSpec(encoder=str(arch["encoder"]), in_chans=int(arch.get("in_chans") or len(spec.channels)),
                             channel_mode=spec.channel_mode, channels=list(spec.channels),
                             mean=[float(v) for v in spec.mean], std=[float(v) for v in spec.std], levels=levels,
                             dim=dim or None, source={"path": str(Path(model_dir).resolve()),
                                                      "method": meta.get("method")})
    emb = Embedding(emb_spec)
    emb.load_encoder(enc)
    return emb.eval(), meta


class SeriesComposite(torch.nn.Module):
    """(B, D, H, W) calendar series standardised by the reader (sensor-major, then period, then band) -> (B, F, H,
    W): a pixel time-series encoder's embedding of each pixel (:class:`backend.pixel.series.SeriesEmbedding`)."""

    def __init__(self, embedding: SeriesEmbedding, layout: list[tuple[str, list[str]]], periods: int,
                 mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.embedding, self.layout, self.periods = embedding, layout, periods
        self.register_buffer("in_mean", torch.from_numpy(np.asarray(mean, np.float32)))
        self.register_buffer("in_std", torch.from_numpy(np.asarray(std, np.float32)))

    def series(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        parts, o, c0 = [], 0, 0
        for _, names in self.layout:  # the reader's blocks: (B, P x C_s, H, W), period-major
            n = len(names)
            v = x[:, o:o + self.periods * n].reshape(b, self.periods, n, h, w)
            parts.append(v * self.in_std[c0:c0 + n].view(1, 1, n, 1, 1) + self.in_mean[c0:c0 + n].view(1, 1, n, 1, 1))
            o, c0 = o + self.periods * n, c0 + n
        v = torch.cat(parts, 2)  # (B, P, C, H, W) raw
        return v.permute(0, 3, 4, 1, 2).reshape(-1, self.periods, v.shape[2])

    def pyramid(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        return self.embedding(self.series(x.float())).reshape(b, h, w, -1).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            f = self.pyramid(x)
            if hasattr(self, "pca_components"):
                f = torch.einsum("bchw,kc->bkhw", f - self.pca_mean.view(1, -1, 1, 1), self.pca_components)
            return f


def series_reader(args: argparse.Namespace, events: Events, meta: dict[str, Any], inputs: Any, plan: Any
                  ) -> tuple[StripReader, SeriesComposite, str]:
    """The reader and the model of ``embed`` with a pixel time-series encoder (Presto, ts-byol): its season
    calendar (the package's, else monthly over the inputs: ``--poi``, else the 12 best covered months), the bands
    of the package the inputs hold (a group they lack is masked by the encoder)."""
    from backend.data.calendar import Calendar, season_calendar
    from backend.data.dates import calendar_groups
    from backend.models.inputs import InputSpec
    from backend.pixel.series import SeriesEmbedding, SeriesEmbeddingSpec, package_of
    from backend.pixel.train import grid_latlon

    full = spec_from_meta(meta)
    available = {"s2": inputs.s2_bands, **({"s1": inputs.s1_bands} if inputs.s1 else {})}
    keep = [i for i, (s, b) in enumerate(full.channels) if b in (available.get(s) or [])]
    if not keep:
        raise EoSslError("missing_bands", f"The inputs hold none of the bands {args.model} reads.",
                         "Give Sentinel-2 and/or Sentinel-1 scenes.")
    spec = InputSpec([full.channels[i] for i in keep], full.mean[keep], full.std[keep], "stack")
    picks = match_channels(spec.channels, available, "the input rasters", events.warning)
    sensors = list(dict.fromkeys(s for s, _ in spec.channels))
    cal_d = (meta.get("input") or {}).get("calendar")
    if cal_d:
        cal = Calendar.from_dict(cal_d)
    else:
        lead = _dates(inputs, "s2" if "s2" in sensors else sensors[0])
        cal, year = season_calendar(None, "month", [d for d, _ in lead],
                                    [d.isoformat() for d in inputs.poi] if inputs.poi else None)
        cal_d = {**cal.to_dict(), "year": year}
    groups, periods, year = calendar_groups(inputs, {"input": {"calendar": cal_d, "dates": {s: [] for s in sensors}}})
    reader = StripReader(inputs, spec, picks, groups, plan, mode="series", periods=periods)
    arch = dict(meta.get("architecture") or {})
    emb = SeriesEmbedding(SeriesEmbeddingSpec(str(arch["family"]), package_of(meta), list(spec.channels),
                                              cal.months(year),
                                              int(arch.get("dim") or arch.get("num_features")),
                                              grid_latlon(inputs.grid.to_dict()),
                                              {"path": str(Path(args.model).resolve()), "method": meta.get("method")}))
    _, state = load_package(args.model)
    emb.load_encoder(weights_under(state, "encoder."))
    layout = [(s, reader.by_sensor[s][0]) for s in reader.by_sensor]
    order = [spec.channels.index((s, n)) for s, names in layout for n in names]
    model = SeriesComposite(emb.eval(), layout, cal.periods, spec.mean[order], spec.std[order])
    text = f"the season calendar ({cal.describe()}, season of {year}) of " + ", ".join(
        f"{s.upper()} {len(g)} date(s)" for s, g in groups.items())
    return reader, model, text


def check_encoder_family(meta: dict[str, Any], model_dir: str | Path) -> None:
    """Refuse a package without a 2D timm encoder or a pixel time-series encoder (a pixel classifier, a dense-moco
    backbone) before any work."""
    from backend.pixel.series import SERIES_FAMILIES

    family = (meta.get("architecture") or {}).get("family")
    if family not in ("timm", "smp", *SERIES_FAMILIES):
        raise EoSslError("unsupported_model", f"{model_dir} holds a {family} model; embed takes packages with a timm "
                         "CNN encoder (pretrain with an image-level method, import-weights, finetune).",
                         "Give a package of eo-ssl pretrain --method moco-v2|byol|rs-byol|..., or import-weights.")


def _parse_levels(text: str) -> list[int]:
    try:
        levels = sorted({int(v) for v in str(text).split(",") if v.strip()})
    except ValueError as exc:
        raise EoSslError("bad_argument", f"--levels {text!r} is not a list of integers.", "Use e.g. 0,1,2,3.") from exc
    if not levels or min(levels) < 0 or max(levels) > 4:
        raise EoSslError("bad_argument", f"--levels {text!r}: levels are 0..4.", "Use e.g. 0,1,2,3.")
    return levels


@torch.no_grad()
def fit_sample(model: CompositeEmbedding | SeriesComposite, reader: StripReader, grid_h: int, grid_w: int,
               windows: int, seed: int, n_pixels: int = 40000) -> np.ndarray:
    """(N, pyramid) pyramid features of pixels of random ``windows`` of the grid that hold valid data."""
    rng = np.random.default_rng(seed)
    size = min(256, grid_h, grid_w)
    size = max(32, size // 32 * 32)
    out = []
    with reader.context():
        for _ in range(windows * 4):
            if len(out) >= windows:
                break
            r = int(rng.integers(0, max(1, grid_h - size + 1)))
            c = int(rng.integers(0, max(1, grid_w - size + 1)))
            x, valid = reader.window(r, c, size)
            if not valid.any():
                continue
            if isinstance(model, SeriesComposite):  # pointwise: embed the sampled pixels only
                series = model.series(torch.from_numpy(x)[None])[torch.from_numpy(valid.ravel())]
                pick = rng.choice(len(series), min(len(series), n_pixels // windows), replace=False)
                out.append(model.embedding(series[torch.from_numpy(pick)]).numpy())
                continue
            pyr = model.pyramid(torch.from_numpy(x)[None])[0]  # (P, s, s)
            feats = pyr[:, torch.from_numpy(valid)].T  # (n_valid, P)
            pick = rng.choice(len(feats), min(len(feats), n_pixels // windows), replace=False)
            out.append(feats[torch.from_numpy(pick)].numpy())
    if not out:
        raise EoSslError("all_nodata", "No valid pixel was found to fit the projection on.",
                         "Check the AOI and the inputs.")
    return np.concatenate(out)


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    t0 = time.monotonic()
    out = Path(args.out)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise EoSslError("bad_output", f"--out {out} is not a .tif path.", "Give a path ending in .tif.")
    levels = _parse_levels(args.levels)
    output = Output(out, kind="embedding", folder=False, replace=True,
                    inputs=options.paths("embed", args, "input")).check().log_swept(events.log)
    meta = read_meta(args.model)
    check_encoder_family(meta, args.model)
    series = (meta.get("architecture") or {}).get("family") not in ("timm", "smp")
    if not series:
        check_tile(args.tile, {"family": "timm"}, "segmentation")  # the encoder's pyramid: a timm CNN
    if args.resolution is None:
        args.resolution = float((meta.get("grid") or {}).get("resolution") or 10.0)
    inputs = resolve_inputs(args, events)
    grid = inputs.grid
    plan = plan_tiles(grid.height, grid.width, args.tile, 0.0 if series else args.overlap)
    device = resolve_device(args.devices).torch_device
    device_text = inference_text(device)
    model: CompositeEmbedding | SeriesComposite
    if series:  # a pixel time-series encoder: each pixel's calendar series, pointwise (no tile overlap)
        if args.date:
            raise EoSslError("bad_argument", "--date: a pixel time-series encoder reads the whole season.",
                             "Leave --date out.")
        reader, model, text = series_reader(args, events, meta, inputs, plan)
        n_dates, encoder_name, full_dim = len(reader.groups), str(model.embedding.spec.family), model.embedding.spec.dim
        events.log(f"embedding {grid.width} x {grid.height} px with the {encoder_name} encoder of {args.model} "
                   f"({full_dim} features per pixel) from {text} on {device_text}")
    else:
        spec = spec_from_meta(meta)
        available = {"s2": inputs.s2_bands, **({"s1": inputs.s1_bands} if inputs.s1 else {})}
        picks = match_channels(spec.channels, available, "the input rasters", events.warning)
        emb, meta = build_embedding(args.model, levels, None)
        if args.date or all(len(_dates(inputs, s)) <= 1 for s in spec.sensors):
            groups = {s: [g] for s, g in choose_groups(inputs, spec, args.date, events).items()}
            n_dates = 1
        else:  # several dates: their composite (the per-band median of the valid observations of each sensor)
            groups = {s: _dates(inputs, s) for s in spec.sensors}
            n_dates = max(len(g) for g in groups.values())
            events.log("embedding the composite (per-band median of the valid dates) of "
                       + ", ".join(f"{s.upper()} {len(g)} date(s)" for s, g in groups.items()))
        reader = StripReader(inputs, spec, picks, groups, plan, mode="composite" if n_dates > 1 else "single")
        model = CompositeEmbedding(emb, len(spec.channels))
        encoder_name, full_dim = emb.spec.encoder, emb.spec.pyramid_dim
        events.log(f"embedding {grid.width} x {grid.height} px with the {encoder_name} of {args.model} "
                   f"(levels {levels}: {full_dim} features) on {device_text}")
    sample = fit_sample(model, reader, grid.height, grid.width, args.sample_windows, args.seed,
                        n_pixels=8000 if series else 40000)
    if args.dim:
        dim = min(args.dim, full_dim)
        mean = sample.mean(0)
        _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
        target = model if series else emb
        target.register_buffer("pca_mean", torch.from_numpy(mean).float())
        target.register_buffer("pca_components", torch.from_numpy(vt[:dim]).float())
        if not series:
            emb.spec.dim = dim
        sample = (sample - mean) @ vt[:dim].T
    n_bands = sample.shape[1]
    scale, offset = _scaling(sample, args.dtype)
    nodata = DTYPES[args.dtype]
    batch_size = options.inference_batch_size(args.batch_size, device.type)
    model = model.to(device).eval()

    @torch.inference_mode()
    def model_fn(batch: torch.Tensor) -> torch.Tensor:
        return model(batch)

    def sink(row0: int, values: np.ndarray) -> None:
        sinks[0].write_rows(_encode(values, args.dtype, scale, offset))

    def on_row(done: int, total: int) -> None:
        events.check_cancel()
        events.progress(done, total, stage="embed")

    tags = {"EO_SSL_EMBEDDING": json.dumps({"model": str(Path(args.model).resolve()), "method": meta.get("method"),
                                             "encoder": encoder_name, "levels": None if series else levels,
                                             "dim": args.dim or None,
                                             "dates": n_dates, "tile": args.tile, "overlap": args.overlap})}
    sinks: list[RasterSink] = []
    ahead: ReadAhead | None = None

    def abort_sinks() -> None:
        for snk in sinks:
            snk.abort()

    def close_reader() -> None:
        if ahead is not None:
            ahead.close()

    with abort_on_failure(out, abort_sinks, output.abort, always=close_reader):
        sinks.append(RasterSink(out, grid, args.dtype, nodata, tags=tags, count=n_bands,
                                descriptions=[f"embedding {i + 1}" + (" (PC)" if args.dim else "")
                                              for i in range(n_bands)],
                                scales=scale.tolist() if scale is not None else None,
                                offsets=offset.tolist() if offset is not None else None))
        ahead = ReadAhead(plan.strips(), reader, depth=1, setup=reader.context, check=events.check_cancel)
        stats = predict_tiled(plan, iter(ahead), model_fn, n_bands, reader.n_channels, batch_size=batch_size,
                              device=device, sink=sink, on_row=on_row, on_batch=events.check_cancel,
                              finish=finish_features, normalize=reader.normalization())
        events.check_cancel()
        output.commit(sinks[0].finish())
    elapsed = time.monotonic() - t0
    events.artifact("embedding", str(out))
    area_km2 = grid.width * grid.height * grid.resolution ** 2 / 1e6
    return {"out": str(out), "bands": n_bands, "dtype": args.dtype,
            "grid": f"{grid.width} x {grid.height} px at {grid.resolution:g} m", "area_km2": round(area_km2, 3),
            "tiles": stats.tiles, "elapsed_s": round(elapsed, 2), "device": device_text}


def _dates(inputs: Any, sensor: str) -> list:
    from backend.data.scenes import group_by_date

    return group_by_date(inputs.s2 if sensor == "s2" else inputs.s1)


def _scaling(sample: np.ndarray, dtype: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per band (scale, offset) with value = stored * scale + offset, from the 0.1/99.9 percentiles of ``sample``."""
    if dtype == "float32":
        return None, None
    lo, hi = np.percentile(sample, [0.1, 99.9], axis=0)
    span = np.maximum(hi - lo, 1e-6)
    if dtype == "uint8":  # 0..254 (255 = nodata)
        return span / 254.0, lo
    return span / 65534.0, lo + span / 2.0  # int16: -32767..32767 (-32768 = nodata)


def _encode(values: np.ndarray, dtype: str, scale: np.ndarray | None, offset: np.ndarray | None) -> np.ndarray:
    if dtype == "float32":
        return values
    assert scale is not None and offset is not None
    nan = np.isnan(values)
    q = np.rint((np.nan_to_num(values) - offset[:, None, None]) / scale[:, None, None])
    if dtype == "uint8":
        out = np.clip(q, 0, 254).astype(np.uint8)
        out[nan] = 255
    else:
        out = np.clip(q, -32767, 32767).astype(np.int16)
        out[nan] = -32768
    return out

