"""``eo-ssl export-onnx``: a classification or segmentation package -> an ONNX model other tools can run.

    eo-ssl export-onnx --model MODEL_DIR --out model.onnx [--tile 256] [--overlap 0.25] [--opset 17]

**What the graph computes.** Input ``input`` (N, C, tile, tile) float32: the **raw band values** (Sentinel-2 digital
numbers = reflectance x 10,000, Sentinel-1 in dB) in the order of the package's ``input.channels``. The graph
applies the package's per-band normalisation ``(x - mean) / std`` itself, runs the network and a softmax; output
``probabilities`` (N, K, tile, tile). A classification package (one class per patch) gives its class probabilities
at every pixel of the tile, as ``eo-ssl predict`` does before blending. Batch size is dynamic; the tile is fixed
(Deepness takes its tile size from the input shape).

**Why the normalisation is in the graph.** The Deepness QGIS plugin (PUTvision/qgis-plugin-deepness,
``processing/models/model_base.py``) reads the layer's raw band values, multiplies them by 1/255 and then applies
``(x - standardization_mean) / standardization_std`` from the metadata. With the normalisation baked in, the
metadata only has to undo Deepness' 1/255 (``standardization_mean = 0``, ``standardization_std = 1/255`` per band), so
the graph receives the raw values whatever tool feeds it: Deepness, a plain onnxruntime script, or anything that
reads the GeoTIFF's numbers. Putting eo-ssl's mean/std into the metadata instead (mean/255, std/255) would also be
exact for Deepness, but every other consumer would have to know and apply the normalisation.

**Metadata** (``metadata_props``, every value JSON as Deepness parses it): ``model_type`` "Segmentor",
``class_names`` {id: name}, ``resolution`` (cm per pixel), ``tile_size`` (what Deepness' code reads) and
``tiles_size`` (what its documentation names), ``tiles_overlap`` (percent), ``standardization_mean``/``_std``,
``seg_thresh`` 0 and ``seg_small_segment`` 0 (no thresholding, no small-segment removal: the eo-ssl map); and
eo-ssl's own: ``eo_ssl_bands``, ``eo_ssl_channels``, ``eo_ssl_normalization`` (raw mean/std, applied in the graph),
``class_colors`` {id: "#rrggbb"}, ``eo_ssl_model`` (task, architecture, provenance chain, weights SHA-256) and
``eo_ssl_check`` (the export's own comparison with the torch model).

Every export is checked before it is written: onnxruntime and the torch model run the same deterministic tile of
plausible raw values (mean + std x N(0, 1) per band); fewer than 99.9 % of pixels with the same class is an error.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from backend import options
from backend.errors import EoSslError
from backend.events import Events
from backend.models.inputs import InputSpec, spec_from_meta
from backend.outputs import Output, abort_on_failure
from backend.train.networks import check_tile

#: share of pixels that must get the same class from onnxruntime and torch
AGREEMENT = 0.999
#: what Deepness multiplies raw values by before its standardisation (preprocessing_utils.normalize_values_to_01)
DEEPNESS_SCALE = 1.0 / 255.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options, declared in :mod:`backend.options`."""
    options.add_arguments(p, "export-onnx")


class RawToProbabilities(nn.Module):
    """Raw band values -> class probabilities per pixel: normalisation, network, softmax (and, for a patch
    classifier, the patch's probabilities at every pixel)."""

    def __init__(self, net: nn.Module, spec: InputSpec, task: str) -> None:
        super().__init__()
        self.net, self.task = net, task
        self.register_buffer("mean", torch.as_tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(self.net((x - self.mean) / self.std).float(), dim=1)
        if self.task == "classification":
            p = p[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return p


def _output(out: Path, model: str) -> Output:
    """The .onnx file, checked: never the package's, and an existing file only when eo-ssl exported it."""
    if out.suffix.lower() != ".onnx":
        raise EoSslError("bad_output", f"--out {out} is not an .onnx path.", "Give a path ending in .onnx.")
    return Output(out, kind="onnx", folder=False, replace=True, inputs=[("--model", model)]).check()


def sample_tile(spec: InputSpec, tile: int, seed: int = 0) -> np.ndarray:
    """(1, C, tile, tile) float32 raw values around the normalisation's mean (deterministic): the export's check."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((1, len(spec.channels), tile, tile)).astype(np.float32)
    return z * spec.std.reshape(1, -1, 1, 1) + spec.mean.reshape(1, -1, 1, 1)


def compare(session: Any, wrapped: nn.Module, raw: np.ndarray) -> dict[str, float]:
    """onnxruntime vs torch on ``raw`` (N, C, h, w): share of pixels with the same class, largest probability gap."""
    got = session.run(None, {session.get_inputs()[0].name: raw})[0]
    with torch.no_grad():
        want = wrapped(torch.from_numpy(raw)).numpy()
    return {"same_class": float((got.argmax(1) == want.argmax(1)).mean()),
            "max_abs_prob_diff": float(np.abs(got - want).max())}


def metadata(meta: dict[str, Any], spec: InputSpec, tile: int, overlap: float, check: dict[str, float],
             weights_sha256: str) -> dict[str, Any]:
    """The ``metadata_props`` of the export (values before JSON encoding)."""
    k = int((meta.get("architecture") or {}).get("num_classes") or len(meta["classes"]))
    by_id = {int(c["id"]): c for c in meta["classes"]}
    names = {i: str(by_id[i]["name"]) if i in by_id else f"class_{i}" for i in range(k)}
    colours = {i: str(by_id[i].get("colour") or "#808080") if i in by_id else "#808080" for i in range(k)}
    c = len(spec.channels)
    prov = meta.get("provenance") or {}
    return {
        "model_type": "Segmentor",
        "class_names": names,
        "resolution": float((meta.get("grid") or {}).get("resolution") or 10.0) * 100.0,
        "tile_size": int(tile),
        "tiles_size": int(tile),
        "tiles_overlap": int(round(overlap * 100)),
        "standardization_mean": [0.0] * c,
        "standardization_std": [DEEPNESS_SCALE] * c,
        "seg_thresh": 0.0,
        "seg_small_segment": 0,
        "class_colors": colours,
        "eo_ssl_bands": [b for _, b in spec.channels],
        "eo_ssl_channels": [[s, b] for s, b in spec.channels],
        "eo_ssl_normalization": {"mean": [float(v) for v in spec.mean], "std": [float(v) for v in spec.std],
                                 "applied": "in the graph: probabilities = softmax(net((input - mean) / std))",
                                 "input": "raw band values (Sentinel-2 digital numbers = reflectance x 10000, "
                                          "Sentinel-1 dB) in the order of eo_ssl_bands"},
        "eo_ssl_model": {"task": meta.get("task"), "method": meta.get("method"),
                         "architecture": meta.get("architecture"), "created": meta.get("created"),
                         "code_version": meta.get("code_version"), "weights_sha256": weights_sha256,
                         "chain": prov.get("chain"), "date": (meta.get("input") or {}).get("date")},
        "eo_ssl_check": check,
    }


def run(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort

    from backend import __version__
    from backend.models.package import WEIGHTS, read_meta, sha256_of
    from backend.predict.scene import load_model

    out = Path(args.out)
    output = _output(out, args.model)
    meta = read_meta(args.model)
    if ((meta.get("architecture") or {}).get("family")) == "unet3d":
        raise EoSslError("unsupported_model", f"{args.model} is a multi-date U-Net-3D (dense-moco): it reads a time "
                         "series, which Deepness and single-raster ONNX consumers do not feed.",
                         "Export a single-date model (finetune --arch unet or a classification head).")
    meta, net = load_model(args.model)  # refuses pre-training packages (no classes) and damaged weights
    spec = spec_from_meta(meta)
    task = meta["task"]
    tile = args.tile or (int(meta["input"].get("crop") or 64) if task == "classification" else 256)
    check_tile(tile, meta["architecture"], task)
    wrapped = RawToProbabilities(net.float().eval(), spec, task).eval()
    tmp = output.start()
    c, k = len(spec.channels), len(meta["classes"])
    with abort_on_failure(out, output.abort):
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice: the export is checked below
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, (torch.zeros(1, c, tile, tile),), str(tmp), dynamo=False,
                              input_names=["input"], output_names=["probabilities"], opset_version=int(args.opset),
                              dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
                              do_constant_folding=True)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        check = compare(session, wrapped, sample_tile(spec, tile))
        del session
        check["threshold"] = AGREEMENT
        if check["same_class"] < AGREEMENT:
            raise EoSslError("export_mismatch", f"The ONNX model gives the torch model's class on only "
                             f"{check['same_class']:.4%} of a test tile's pixels.",
                             "Try another --opset; report the model's architecture.")
        model = onnx.load(str(tmp))
        dims = model.graph.output[0].type.tensor_type.shape.dim  # the exporter names spatial dims oddly: pin them
        for dim, value in zip(dims, ("batch", k, tile, tile)):
            dim.Clear()
            if isinstance(value, str):
                dim.dim_param = value
            else:
                dim.dim_value = value
        props = metadata(meta, spec, tile, args.overlap, check, sha256_of(Path(args.model) / WEIGHTS))
        for key, value in props.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        model.producer_name, model.producer_version = "eo-ssl", __version__
        model.doc_string = (f"eo-ssl {task} model ({meta['architecture'].get('encoder')} + "
                            f"{meta['architecture'].get('decoder')}), {k} classes; input: raw "
                            f"{', '.join(props['eo_ssl_bands'])} at {props['resolution'] / 100:g} m")
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        events.check_cancel()  # the last safe point: a signal after it finds the export complete
        output.commit()
    events.artifact("onnx", str(out))
    events.log(f"exported {task} model: input (N, {c}, {tile}, {tile}) raw {', '.join(props['eo_ssl_bands'])}; "
               f"onnxruntime vs torch on a test tile: {check['same_class']:.4%} same class, largest probability "
               f"difference {check['max_abs_prob_diff']:.2e}")
    return {"out": str(out), "bytes": out.stat().st_size, "task": task, "input": [None, c, tile, tile],
            "classes": k, "bands": ",".join(props["eo_ssl_bands"]), "opset": int(args.opset),
            "same_class": round(check["same_class"], 6), "max_abs_prob_diff": check["max_abs_prob_diff"]}
