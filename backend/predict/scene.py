"""One map of ``eo-ssl predict``: a model package + Sentinel-1/2 rasters -> a land-cover map (and confidence) over
the AOI.

The library of the command (:mod:`backend.predict.command`) and of ``--scenes`` (:mod:`backend.predict.region`):
:func:`load_predictor` once, then :func:`map_scene` for each scene.

Inputs are given exactly as to ``prepare`` (:data:`backend.options.INPUTS`); the analysis grid is
chosen the same way, at the model's resolution unless ``--resolution`` says otherwise. Windows are read straight
from the source rasters onto the grid (:class:`backend.data.warp.GridReader`: plain reads when a file is on the
grid, a ``WarpedVRT`` otherwise), normalised with the package's statistics, batched to the device and blended
(:mod:`backend.predict.tiled`); finished rows of blocks are written as they complete (:mod:`backend.predict.writer`).

A single-date model reads one acquisition: the Sentinel-2 date with the most valid pixels in the AOI (counted on a
coarse copy of the grid, one band per date), or ``--date``; Sentinel-1 at the date nearest to it (the rule of
:mod:`backend.data.dates`, which ``finetune`` applies to a store). Several scenes of the same day are mosaicked (the
first valid value wins), as ``prepare`` does; :class:`backend.predict.strips.StripReader` reads them.

Outputs: ``MAP.tif`` (uint8 class ids, 255 = nodata outside the AOI polygon and where an input band is nodata;
colour table; class names in the ``CLASS_NAMES`` tag and the band description; COG), ``MAP.qml`` (the class legend),
and with ``--confidence`` a float32 raster of the highest class probability (-1 = nodata) with its own ``.qml``.
All are written under temporary names and renamed when complete, the map last; an existing output is replaced only
then.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend import options
from backend.data.calendar import Calendar
from backend.data.dates import calendar_groups, choose_groups, date_groups
from backend.data.prepare import resolve_inputs
from backend.data.scenes import group_by_date
from backend.devices import inference_text, resolve_device
from backend.errors import EoSslError
from backend.events import Events
from backend.models import to_channels_last
from backend.models.inputs import InputSpec, match_channels, spec_from_meta
from backend.models.package import check_classifier_meta, load_package, read_meta
from backend.outputs import Output, abort_on_failure
from backend.predict import styles
from backend.predict.strips import StripReader
from backend.predict.tiled import ReadAhead, TiledStats, plan_tiles, predict_tiled
from backend.predict.writer import CLASS_NODATA, CONFIDENCE_NODATA, RasterSink, WriteBehind, class_metadata
from backend.train.networks import check_tile

#: ``--tile`` of a segmentation model when not given (a classifier's is its chip size)
SEGMENTATION_TILE = 256


# -- model ----------------------------------------------------------------------------------------------------------
def load_model(model_dir: str | Path) -> tuple[dict[str, Any], torch.nn.Module]:
    """(model.json, the network with its weights) of a fine-tuned package."""
    from backend.train.networks import create_network

    meta = read_meta(model_dir)
    check_classifier_meta(meta, model_dir)
    task = meta.get("task")
    arch = meta["architecture"]
    _, state = load_package(model_dir)
    n_channels = len(meta["input"]["channels"])
    per_band = (meta["input"].get("channel_mode") or "stack") == "per-band"
    k = int(arch.get("num_classes") or len(meta["classes"]))
    net = create_network(str(task), arch, n_channels, k, per_band=per_band)
    net.load_package_state_dict(state)  # type: ignore[operator]
    return meta, net.eval()


def make_model_fn(net: torch.nn.Module, device: torch.device) -> Any:
    """Batch (B, C, t, t) float32 on ``device`` -> logits on ``device``: channels_last and AMP (bf16 where supported,
    else fp16) on CUDA; float32 channels_last on the CPU (oneDNN's convolutions are faster in that layout: 0.95 ->
    0.79 s for a batch of four 256 px tiles of a resnet18 U-Net on one EPYC core). The batches are cut from strips
    already on the device (:func:`backend.predict.tiled.predict_tiled`: pinned strips, non-blocking copies)."""
    cuda = device.type == "cuda"
    amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else torch.float32
    net = to_channels_last(net.to(device))
    # the batch in the network's layout (a copy, but one its first convolution would make anyway); a network without
    # 2D convolutions (a pixel classifier) reads it as it is
    layout = torch.channels_last if any(p.dim() == 4 for p in net.parameters()) else torch.contiguous_format
    if cuda:
        torch.backends.cudnn.benchmark = True

    @torch.inference_mode()
    def fn(batch: torch.Tensor) -> torch.Tensor:
        x = batch.contiguous(memory_format=layout)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=cuda):
            out = net(x)
        return out.float()

    return fn


# -- command ----------------------------------------------------------------------------------------------------
def _output(path: Path, option: str, inputs: list[tuple[str, str]]) -> Output:
    """A raster output (and its .qml style), checked: an existing map is replaced only when eo-ssl wrote it."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise EoSslError("bad_output", f"{option} {path} is not a .tif path.", "Give a path ending in .tif.")
    return Output(path, kind="map", folder=False, replace=True, inputs=inputs, option=option,
                  sidecars=[path.with_suffix(".qml")]).check()


@dataclass
class Predictor:
    """A model package and its device, ready to map one scene after another (:func:`map_scene`). The weights are
    loaded when the first scene's inputs are known to fit the model (:meth:`network`)."""

    model_dir: str
    meta: dict[str, Any]
    spec: InputSpec
    device: torch.device
    device_text: str
    tile: int
    batch_size: int
    resolution: float
    net: torch.nn.Module | None = None
    model_fn: Any = None

    def network(self) -> tuple[torch.nn.Module, Any]:
        """(the network, its batch -> logits function on the device), loaded once."""
        if self.net is None:
            self.meta, self.net = load_model(self.model_dir)
            self.model_fn = make_model_fn(self.net, self.device)
        return self.net, self.model_fn


def load_predictor(args: argparse.Namespace, events: Events, device: torch.device | None = None) -> Predictor:
    """Read and check the package (``corrupt_model`` etc. before any pixel) and choose the device (``--devices``, or
    ``device``: a rank's own GPU)."""
    meta = read_meta(args.model)
    check_classifier_meta(meta, args.model)
    model_res = float((meta.get("grid") or {}).get("resolution") or 10.0)
    resolution = model_res if args.resolution is None else float(args.resolution)
    if not math.isclose(resolution, model_res):
        events.warning("resolution_mismatch", f"--resolution {resolution:g} m, but the model was trained at "
                       f"{model_res:g} m: objects will look {model_res / resolution:.2g}x their trained size.")
    spec = spec_from_meta(meta)
    if device is None:
        device = resolve_device(args.devices).torch_device
    device_text = inference_text(device)
    task = meta["task"]
    tile = args.tile or (int(meta["input"].get("crop") or 64) if task == "classification" else SEGMENTATION_TILE)
    check_tile(tile, meta["architecture"], task)
    batch_size = options.inference_batch_size(args.batch_size, device.type)
    return Predictor(str(args.model), meta, spec, device, device_text, tile, batch_size, resolution)


def _time_s(stats: TiledStats, read_s: float, write_s: float, cog_s: float, elapsed: float) -> dict[str, Any]:
    """Where the time went: seconds per stage, and milliseconds per tile. The stages overlap (reading and writing run
    in threads of their own), so they add up to more than the total when the overlap works."""
    stages = {"read": read_s, "read_wait": stats.read_wait_s, "upload": stats.upload_s, "model": stats.model_s,
              "blend": stats.blend_s, "finish_rows": stats.finish_s, "write": write_s,
              "write_wait": stats.write_s, "overviews_and_cog": cog_s}
    n = max(stats.tiles, 1)
    return {**{k: round(v, 2) for k, v in stages.items()}, "total": round(elapsed, 2),
            "ms_per_tile": {k: round(1e3 * v / n, 2) for k, v in stages.items() if k != "overviews_and_cog"}}


def map_scene(pred: Predictor, args: argparse.Namespace, out: Path, conf_path: Path | None, outputs: list[Output],
              events: Events, on_row: Any = None, extra_tags: dict[str, Any] | None = None) -> dict[str, Any]:
    """Map the inputs of ``args`` (prepare's input options, ``--date``, ``--overlap``) with ``pred`` into ``out``
    (and ``conf_path``), committed through ``outputs`` (checked by the caller). ``on_row(done, total)`` after each
    row of tiles (default: a progress event). ``extra_tags`` go into the map's ``EO_SSL_PREDICT`` tag."""
    t0 = time.monotonic()
    meta, spec, device = pred.meta, pred.spec, pred.device
    args.resolution = pred.resolution
    inputs = resolve_inputs(args, events)
    picks = match_channels(spec.channels, inputs.bands(), "the input rasters", events.warning)  # before any pixel
    net, model_fn = pred.network()
    meta = pred.meta
    task = meta["task"]
    series = meta["input"].get("layout") == "sensor-date-band"
    mode = "series" if series else "single"
    overlap = args.overlap
    periods: dict[str, tuple[np.ndarray, int]] | None = None
    if series:  # a model of every date of its store (pixel classifiers)
        if args.date:
            raise EoSslError("bad_argument", "--date: this model reads every date it was trained on.",
                             "Leave --date out (or train a single-date model with finetune --date).")
        if meta["input"].get("calendar"):
            groups, periods, year = calendar_groups(inputs, meta)
            cal = Calendar.from_dict(meta["input"]["calendar"])
            events.log(f"reading the season calendar ({cal.describe()}) in the season of {year}: "
                       + ", ".join(f"{s.upper()} {len(g)} date(s)" for s, g in groups.items()))
        else:
            groups = date_groups(inputs, meta)
            events.log("reading " + ", ".join(f"{s.upper()} {len(g)} date(s)" for s, g in groups.items()))
        if getattr(net, "pointwise", False):
            overlap = 0.0  # a pixel's class depends on that pixel alone: tiles need neither overlap nor blending
    elif meta["input"].get("dates") == "composite" and args.date in (None, "composite"):
        # a 2D model of the per-band median of the period: every acquisition of the inputs (any dates)
        groups = {s: group_by_date(inputs.scenes(s)) for s in spec.sensors}
        mode = "composite"
        events.log("reading the composite (per-band median of the valid dates) of "
                   + ", ".join(f"{s.upper()} {len(g)} date(s)" for s, g in groups.items()))
    else:
        groups = {s: [g] for s, g in choose_groups(inputs, spec, args.date, events).items()}
    grid = inputs.grid
    tile = pred.tile
    plan = plan_tiles(grid.height, grid.width, tile, overlap)
    classes = meta["classes"]
    area_km2 = grid.width * grid.height * grid.resolution ** 2 / 1e6
    arch = meta["architecture"]
    parts = " + ".join(str(p) for p in (arch.get("encoder"), arch.get("decoder")) if p) or "the model"
    events.log(f"predicting {grid.width} x {grid.height} px ({area_km2:.1f} km²) with {parts} ({task}, "
               f"{len(classes)} classes) on {pred.device_text}: {plan.n_tiles} tiles of {tile} px, "
               f"overlap {overlap:g}, batch {pred.batch_size}")
    if task == "classification":
        events.log("a patch classifier: every tile gets one class, blended between overlapping tiles")

    provenance = {"model": str(Path(pred.model_dir).resolve()),
                  "date": {s: (str(g[0][0]) if len(g) == 1 else f"{len(g)} dates") for s, g in groups.items()},
                  "tile": tile, "overlap": overlap, "code": "eo-ssl predict", **(extra_tags or {})}
    colormap, tags, description = class_metadata(classes, {"EO_SSL_PREDICT": provenance})
    counts = np.zeros(256, np.int64)
    sinks: list[RasterSink] = []

    def write(row0: int, cls: np.ndarray, conf: np.ndarray) -> None:  # in the write-behind thread
        sinks[0].write_rows(cls)
        if len(sinks) > 1:
            sinks[1].write_rows(conf)
        counts[:] += np.bincount(cls.ravel(), minlength=256)

    def progress(done: int, total: int) -> None:
        events.check_cancel()
        events.progress(done, total, stage="predict")

    reader = StripReader(inputs, spec, picks, groups, plan, mode=mode, pin=device.type == "cuda",
                         periods=periods)
    ahead: ReadAhead | None = None
    writer: WriteBehind | None = None

    def undo() -> None:  # the write-behind thread, then the sinks' temporaries
        if writer is not None:
            with contextlib.suppress(BaseException):
                writer.close()
        for snk in sinks:
            snk.abort()

    with abort_on_failure(out, undo, always=lambda: ahead.close() if ahead is not None else None):
        sinks.append(RasterSink(out, grid, "uint8", CLASS_NODATA, colormap=colormap, tags=tags,
                                description=description, overviews="mode"))
        if conf_path is not None:
            sinks.append(RasterSink(conf_path, grid, "float32", CONFIDENCE_NODATA,
                                    tags={"EO_SSL_PREDICT": json.dumps(provenance)},
                                    description="confidence (highest class probability, 0..1)"))
        writer = WriteBehind(write)
        ahead = ReadAhead(plan.strips(), reader, depth=2, setup=reader.context, check=events.check_cancel)
        stats = predict_tiled(plan, iter(ahead), model_fn, len(classes), reader.n_channels,
                              batch_size=pred.batch_size, device=device, sink=writer, on_row=on_row or progress,
                              on_batch=events.check_cancel,  # cancel between batches: within seconds
                              normalize=reader.normalization())
        writer.close()
        events.check_cancel()
        if stats.tiles == 0:
            first = next(iter(groups.values()))[0][0]
            raise EoSslError("all_nodata", f"Every pixel of the input ({first or 'undated'}) inside the "
                             "AOI is nodata (clouds masked, or the AOI lies in the scene's empty margin): the map "
                             "would be empty.", "Pick another --date, AOI or scene.")
        t_cog = time.monotonic()
        conf_tmp = sinks[1].finish() if len(sinks) > 1 else None
        map_tmp = sinks[0].finish()
        cog_s = time.monotonic() - t_cog
        qml = styles.paletted_qml(classes, out.with_suffix(".qml"))
        if conf_tmp is not None and conf_path is not None:
            styles.confidence_qml(conf_path.with_suffix(".qml"))
            outputs[1].commit(conf_tmp)
        outputs[0].commit(map_tmp)  # last: the map's name appears only when everything is complete
    elapsed = time.monotonic() - t0
    events.artifact("map", str(out), qml=str(qml))
    if conf_path is not None:
        events.artifact("confidence", str(conf_path))
    pixels = {c["name"]: int(counts[int(c["id"])]) for c in classes}
    return {"out": str(out), "confidence": str(conf_path) if conf_path else None, "qml": str(qml),
            "grid": f"{grid.width} x {grid.height} px at {grid.resolution:g} m", "area_km2": round(area_km2, 3),
            "class_pixels": pixels, "nodata_pixels": int(counts[CLASS_NODATA]), "tiles": stats.tiles,
            "tiles_skipped": stats.tiles_skipped, "elapsed_s": round(elapsed, 2),
            "km2_per_s": round(area_km2 / max(elapsed, 1e-9), 3), "device": pred.device_text,
            # where the time went: what to speed up next, and what a slow disk or a busy GPU costs
            "time_s": _time_s(stats, ahead.busy_s if ahead else 0.0, writer.busy_s if writer else 0.0, cog_s,
                              elapsed)}


def check_outputs(args: argparse.Namespace) -> tuple[Path, Path | None, list[Output]]:
    """``--out`` and ``--confidence``, checked before any work (see :class:`backend.outputs.Output`)."""
    out = Path(args.out)
    conf_path = Path(args.confidence) if args.confidence else None
    input_paths = options.paths("predict", args, "input")
    outputs = [_output(out, "--out", input_paths)]
    if conf_path is not None:
        if conf_path.resolve() == out.resolve() or conf_path.with_suffix(".qml").resolve() == \
                out.with_suffix(".qml").resolve():
            raise EoSslError("bad_output", "--confidence and --out are the same file (or share a .qml style).",
                             "Give two paths with different names.")
        outputs.append(_output(conf_path, "--confidence", input_paths))
    return out, conf_path, outputs
