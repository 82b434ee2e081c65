"""``eo-ssl predict --scenes ... --out-dir DIR``: map a region, many scenes over many processes and machines.
Long because: one mode of predict whose steps (scenes, plan, processes, progress, mosaic) run only together.

A scene is what ``--s2`` takes (a file, a folder of band files or of dated files), or a text file (``.txt``/``.lst``)
listing such paths, one per line (``#`` comments; relative paths from the list's folder). The other input options
(``--s1``, ``--aoi``/``--bbox``, ``--poi``, ``--crs``, ``--date``...) apply to every scene. Each scene becomes
``DIR/NAME.tif`` (a COG like ``predict --out``'s, with its ``.qml``; ``NAME`` from the file or folder name), and
``DIR/mosaic.vrt`` + ``mosaic.qml`` put them together (one ``mosaic_EPSGxxxx.vrt`` per CRS when the scenes lie in
several UTM zones and no ``--crs`` was given; where maps overlap, the later scene in the list wins where it has data).

Processes: the engine training uses (Lightning, torch.distributed): ``--devices cpu:N`` (N CPU processes, gloo),
``--devices N`` (N GPUs, or N CPU processes without one), ``--num-nodes M``; launched by Lightning's launcher (the
command line is re-run with ``LOCAL_RANK``) or by ``torchrun`` (``-m backend predict ... --devices N --num-nodes
M``, matching torchrun's ``--nproc-per-node`` and ``--nnodes``). The model is loaded once per process. Scenes are
handed out largest first (by the bytes of their files) from a counter in torch.distributed's key-value store, so a
process that finishes early takes the next one; only the first process writes the folder's marker, the mosaic and
the events, and it reports progress over the whole job from what every process posts in the store.

Resuming: a scene whose map is in ``DIR`` and was made by this job (the map's ``EO_SSL_PREDICT`` tag holds the scene,
the SHA-256 of the model's weights and the options that change pixels) is not redone; a map of another model or
other options is replaced. A scene that fails (bad input, nothing valid in the AOI) is reported and the others go
on; the command then ends with ``scenes_failed`` (the finished maps and the mosaic stay; run it again to retry).

One mode of ``predict`` (many scenes, several processes) whose sections --
scenes, the plan, the processes, their merged progress, the job, the mosaic -- are used only by :func:`run_region`
and only together (the plan and the ranks are threaded through every step); one map stays in
:mod:`backend.predict.scene`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from affine import Affine

from backend import disk, options, output_paths, outputs
from backend.devices import resolve_device
from backend.errors import EoSslError
from backend.events import Cancelled, Events
from backend.outputs import Output
from backend.predict import styles, vrt
from backend.predict.scene import Predictor, load_predictor, map_scene
from backend.predict.writer import CLASS_NODATA, class_metadata

LIST_SUFFIXES = (".txt", ".lst")
#: what the folder holds (its eo-ssl marker lists these; anything else there is the user's)
ENTRIES = ("*.tif", "*.qml", "*.vrt", "*.aux.xml")
#: input options whose values change the pixels of a map (with the scene and the weights: a finished map's key)
KEY_OPTIONS = ("s2_bands", "s1", "s1_bands", "aoi", "aoi_layer", "bbox", "bbox_crs", "poi", "crs", "resolution",
               "date", "tile", "overlap")
#: a process that posts nothing for this long is taken for dead (its scenes are reported as failed)
SILENT_RANK_S = 900.0


# -- scenes ---------------------------------------------------------------------------------------------------------
def expand_scenes(paths: list[str]) -> list[Path]:
    """The scenes of ``--scenes``: paths as given, text files replaced by the paths they list."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            for line in p.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line).expanduser()
                    out.append(q if q.is_absolute() else p.parent / q)
        else:
            out.append(p)
    missing = [str(p) for p in out if not p.exists()]
    if missing:
        raise EoSslError("input_not_found", f"{len(missing)} scene(s) of --scenes do not exist: "
                         + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "") + ".",
                         "Check the paths (those in a list file are relative to the list's folder).")
    unique = list(dict.fromkeys(p.resolve() for p in out))
    if not unique:
        raise EoSslError("no_s2", "--scenes names no scene.", "Give files, folders or a list file of them.")
    return unique


_RASTER_SUFFIXES = re.compile(r"\.(tif|tiff|jp2|vrt|img|nc)$", re.IGNORECASE)


def _safe(text: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", text)


def scene_names(scenes: list[Path]) -> list[str]:
    """One output name per scene: the file name without its suffix, or the folder name; a name met twice gets its
    parent folder's name in front (and then a number)."""
    base = [_safe(_RASTER_SUFFIXES.sub("", p.name)) or "scene" for p in scenes]
    names: list[str] = []
    for p, b in zip(scenes, base):
        name = b if base.count(b) == 1 else f"{_safe(p.parent.name)}_{b}"
        k = 2
        candidate = name
        while candidate in names:
            candidate, k = f"{name}_{k}", k + 1
        names.append(candidate)
    return names


def scene_bytes(path: Path) -> int:
    """Bytes of the files of a scene: the weight the scenes are handed out by (largest first)."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# -- the plan -------------------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """What the job does, made by the first process and handed to the others."""

    scenes: list[str]
    names: list[str]
    weights: list[int]
    todo: list[int]  # indices of scenes to map, largest first
    done: list[int]  # indices of scenes whose map this job already made (resumed)
    keys: list[dict[str, Any]] = field(default_factory=list)


def job_key(args: argparse.Namespace, scene: Path, weights_sha256: str) -> dict[str, Any]:
    """What makes a map this job's: the scene, the weights and the options that change its pixels."""
    opts = {k: getattr(args, k, None) for k in KEY_OPTIONS}
    return {"scene": str(scene), "weights_sha256": weights_sha256, "options": json.loads(json.dumps(opts,
                                                                                                    default=str))}


def finished_key(path: Path) -> dict[str, Any] | None:
    """The job key in an existing map's ``EO_SSL_PREDICT`` tag (None: no map, or not one of a job)."""
    if not path.is_file():
        return None
    try:
        import rasterio

        with rasterio.open(path) as src:
            return json.loads(src.tags().get("EO_SSL_PREDICT", "{}")).get("job")
    except Exception:  # noqa: BLE001 - unreadable (a damaged file): redo it
        return None


def make_plan(args: argparse.Namespace, out_dir: Path, weights_sha256: str) -> Plan:
    scenes = expand_scenes(args.scenes)
    names = scene_names(scenes)
    weights = [scene_bytes(p) for p in scenes]
    keys = [job_key(args, p, weights_sha256) for p in scenes]
    done = [i for i, n in enumerate(names) if finished_key(out_dir / f"{n}.tif") == keys[i]
            and (not args.confidence_maps or (out_dir / f"{n}_confidence.tif").is_file())]
    todo = sorted((i for i in range(len(scenes)) if i not in done), key=lambda i: (-weights[i], i))
    return Plan([str(p) for p in scenes], names, weights, todo, done, keys)


# -- processes ------------------------------------------------------------------------------------------------------
class Ranks:
    """This process's place in the job, and the key-value store the processes share (none when alone)."""

    PREFIX = "eo-ssl-predict/"

    def __init__(self, rank: int = 0, world: int = 1, device: torch.device | None = None, store: Any = None,
                 fabric: Any = None) -> None:
        self.rank, self.world, self.device, self.store, self.fabric = rank, world, device, store, fabric
        self._next = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def set(self, key: str, value: Any) -> None:
        if self.store is not None:
            self.store.set(self.PREFIX + key, json.dumps(value))

    def get(self, key: str) -> Any:
        """The value of ``key``, or None when no process has set it."""
        if self.store is None or not self.store.check([self.PREFIX + key]):
            return None
        return json.loads(self.store.get(self.PREFIX + key))

    def claim(self) -> int:
        """The position (0, 1, ...) in the plan's ``todo`` of the next scene nobody has taken."""
        if self.store is None:
            self._next += 1
            return self._next - 1
        return int(self.store.add(self.PREFIX + "next", 1)) - 1

    def broadcast(self, obj: Any) -> Any:
        return obj if self.fabric is None else self.fabric.broadcast(obj, src=0)

    def close(self) -> None:
        if self.fabric is not None and torch.distributed.is_initialized():
            with contextlib.suppress(Exception):
                torch.distributed.destroy_process_group()


def wants_processes(args: argparse.Namespace) -> bool:
    """Whether this job runs in several processes (``--devices cpu:N``/``N``/ids, ``--num-nodes``, or torchrun)."""
    spec = str(args.devices or "auto").strip().lower()
    several = spec.startswith("cpu:") or "," in spec or (spec.isdigit() and int(spec) > 1)
    return several or int(args.num_nodes or 1) > 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1


def start_processes(args: argparse.Namespace, events: Events) -> Ranks:
    """One process per device (Lightning Fabric's DDP: gloo on CPUs, NCCL on GPUs); this process's rank."""
    if not wants_processes(args):
        return Ranks()
    from lightning.fabric import Fabric

    choice = resolve_device(args.devices, "ddp", "32", int(args.num_nodes or 1))
    fabric = Fabric(accelerator=choice.accelerator, devices=choice.devices, num_nodes=choice.num_nodes,
                    strategy="ddp", precision="32-true")
    fabric.launch()
    from torch.distributed import distributed_c10d

    local = max(1, fabric.world_size // max(1, choice.num_nodes))
    if choice.accelerator == "cpu":  # the cores shared between the processes of a machine
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    if fabric.global_rank == 0:
        events.log(f"mapping on {fabric.world_size} processes ({choice.description.split('training on ', 1)[-1]})")
    return Ranks(fabric.global_rank, fabric.world_size, fabric.device, distributed_c10d._get_default_store(), fabric)


# -- progress -------------------------------------------------------------------------------------------------------
class Progress:
    """Progress over the whole job: each process posts the share of its scenes' bytes it has mapped; the first one
    adds them up (at most once a second) into ``progress`` events (step of 1000, ``scenes_done`` of ``scenes``)."""

    def __init__(self, ranks: Ranks, events: Events, plan: Plan) -> None:
        self.ranks, self.events, self.plan = ranks, events, plan
        self.total = float(sum(plan.weights[i] for i in plan.todo)) or 1.0
        self.done_weight = 0.0  # this process's finished scenes
        self.done_scenes = 0
        self.current = 0.0  # weight of the scene in hand x its share done
        self.t_post = self.t_emit = 0.0

    def scene(self, weight: float, fraction: float) -> None:
        self.current = weight * fraction
        self.post()

    def finished(self, weight: float) -> None:
        self.done_weight += weight
        self.done_scenes += 1
        self.current = 0.0
        self.post(force=True)

    def post(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.t_post >= 0.5:
            self.t_post = now
            self.ranks.set(f"progress/{self.ranks.rank}", {"weight": self.done_weight + self.current,
                                                          "scenes": self.done_scenes, "t": time.time()})
        if self.ranks.main and (force or now - self.t_emit >= 1.0):
            self.t_emit = now
            self.emit()

    def states(self) -> list[dict[str, Any]]:
        if self.ranks.store is None:
            return [{"weight": self.done_weight + self.current, "scenes": self.done_scenes, "t": time.time()}]
        return [self.ranks.get(f"progress/{r}") or {"weight": 0.0, "scenes": 0, "t": time.time()}
                for r in range(self.ranks.world)]

    def emit(self) -> None:
        states = self.states()
        weight = sum(float(s["weight"]) for s in states)
        scenes = sum(int(s["scenes"]) for s in states)
        self.events.progress(min(1000, int(1000 * weight / self.total)), 1000, stage="predict",
                             scenes_done=scenes + len(self.plan.done), scenes=len(self.plan.scenes))


class SceneEvents(Events):
    """The events of one scene inside a job: logs and warnings say which scene (on the first process; the others'
    go to stderr), per-scene progress is replaced by the job's, artifacts are the job's to announce."""

    def __init__(self, parent: Events, name: str) -> None:
        super().__init__(json_mode=parent.json_mode, stream=parent.stream, quiet=parent.quiet)
        self.parent, self.name = parent, name

    @property  # type: ignore[override]
    def cancelled(self) -> bool:
        return self.parent.cancelled

    @cancelled.setter
    def cancelled(self, value: bool) -> None:
        """A scene cannot be cancelled on its own: cancel goes through the job (the parent)."""

    def log(self, message: str, level: str = "info") -> None:
        self.parent.log(f"{self.name}: {message}", level)

    def warning(self, code: str, message: str) -> None:
        self.parent.warning(code, f"{self.name}: {message}")

    def progress(self, step: int, total: int | None = None, **fields: Any) -> None:
        """Per-scene progress is dropped: the job reports progress over all its scenes."""

    def artifact(self, kind: str, path: str, **fields: Any) -> None:
        """Per-scene artifacts are dropped: the job announces every scene's map and the mosaic at its end."""


# -- the job --------------------------------------------------------------------------------------------------------
def _check_args(args: argparse.Namespace) -> Path:
    if args.s2:
        raise EoSslError("bad_argument", "--scenes and --s2 both name Sentinel-2 inputs.",
                         "Give the scenes to --scenes (the other input options apply to each).")
    if args.out or args.confidence:
        raise EoSslError("bad_argument", "--out/--confidence write one map; --scenes writes one per scene into "
                         "--out-dir.", "Give --out-dir DIR (and --confidence-maps for the confidence rasters).")
    if not args.out_dir:
        raise EoSslError("bad_argument", "--scenes needs --out-dir.", "Give --out-dir DIR.")
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EoSslError("not_eo_ssl_output", f"--out-dir {out_dir} is a file.", "Give a folder.")
    return out_dir


def run_region(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    t0 = time.monotonic()
    out_dir = _check_args(args)
    ranks = start_processes(args, events)
    try:
        return _run(args, events, ranks, out_dir, t0)
    finally:
        ranks.close()


def _run(args: argparse.Namespace, events: Events, ranks: Ranks, out_dir: Path, t0: float) -> dict[str, Any]:
    from backend.models.package import WEIGHTS, sha256_of

    pred = load_predictor(args, events, device=ranks.device)
    plan: Plan | None = None
    error: dict[str, Any] | None = None
    if ranks.main:
        try:
            output_paths.refuse_output_in_inputs([("--out-dir", out_dir)], options.paths("predict", args, "input"))
            outputs.claim_folder(out_dir, "maps", ENTRIES, option="--out-dir",
                                 keep_if=lambda: any(out_dir.glob("*.tif")))
            plan = make_plan(args, out_dir, sha256_of(Path(args.model) / WEIGHTS))
            for r in range(ranks.world):
                ranks.set(f"progress/{r}", {"weight": 0.0, "scenes": 0, "t": time.time()})
        except EoSslError as exc:
            error = {"code": exc.code, "message": exc.message, "hint": exc.hint}
    shared = ranks.broadcast({"plan": asdict(plan) if plan else None, "error": error})
    if shared["error"]:
        if ranks.main:
            raise EoSslError(**shared["error"])
        return {}
    plan = Plan(**shared["plan"])
    t_map = time.monotonic()  # every process is up (and has loaded torch, the libraries and the model package)
    if ranks.main:
        events.log(f"{len(plan.scenes)} scene(s): {len(plan.done)} already mapped by this job, {len(plan.todo)} to "
                   f"map on {ranks.world} process(es) into {out_dir}")
    progress = Progress(ranks, events, plan)
    results = _map_my_scenes(pred, args, events, ranks, plan, progress, out_dir)
    ranks.set(f"results/{ranks.rank}", results)
    if not ranks.main:
        return {}
    all_results = _gather_results(ranks, progress, events, plan) if ranks.world > 1 else results
    if events.cancelled or (ranks.world > 1 and ranks.get("cancel")):
        raise Cancelled("cancelled by the user; the finished maps are kept (run the same command to resume)")
    return _finish_job(args, events, ranks, plan, pred, out_dir, all_results, t0, t_map)


def _map_my_scenes(pred: Predictor, args: argparse.Namespace, events: Events, ranks: Ranks, plan: Plan,
                   progress: Progress, out_dir: Path) -> list[dict[str, Any]]:
    """Claim and map scenes until none is left (or the job is cancelled); one result per scene."""
    results: list[dict[str, Any]] = []
    input_paths = options.paths("predict", args, "input")
    while True:
        if _cancelled(ranks, events) or ranks.get("disk_full"):
            break
        k = ranks.claim()
        if k >= len(plan.todo):
            break
        i = plan.todo[k]
        name, weight = plan.names[i], float(plan.weights[i])
        out = out_dir / f"{name}.tif"
        conf = out_dir / f"{name}_confidence.tif" if args.confidence_maps else None
        sargs = copy.copy(args)
        sargs.s2, sargs.out, sargs.confidence = [plan.scenes[i]], str(out), str(conf) if conf else None
        scene_events = SceneEvents(events, name)

        def on_row(done: int, total: int, weight: float = weight) -> None:
            if _cancelled(ranks, events):
                raise Cancelled("cancelled by the user")
            progress.scene(weight, done / max(total, 1))

        result: dict[str, Any] = {"scene": plan.scenes[i], "name": name, "rank": ranks.rank}
        try:
            outs = [Output(out, kind="map", folder=False, replace=True, inputs=input_paths, option="--out-dir",
                           sidecars=[out.with_suffix(".qml")]).check().log_swept(scene_events.log)]
            if conf is not None:
                outs.append(Output(conf, kind="map", folder=False, replace=True, inputs=input_paths,
                                   option="--out-dir", sidecars=[conf.with_suffix(".qml")]).check()
                            .log_swept(scene_events.log))
            summary = map_scene(pred, sargs, out, conf, outs, scene_events, on_row=on_row,
                                extra_tags={"job": plan.keys[i]})
            result.update(status="mapped", out=str(out), area_km2=summary["area_km2"],
                          elapsed_s=summary["elapsed_s"], tiles=summary["tiles"])
        except Cancelled:  # every process stops (through the store); the cancelled scene left nothing behind
            ranks.set("cancel", True)
            break
        except EoSslError as exc:
            status = "empty" if exc.code in ("all_nodata", "aoi_outside_rasters") else "failed"
            result.update(status=status, code=exc.code, message=exc.message)
            events.log(f"{name}: {'nothing to map' if status == 'empty' else 'failed'} ({exc.code}: {exc.message})",
                       level="warning")
        except Exception as exc:  # noqa: BLE001 - one scene's bug must not lose the others' maps
            full = disk.disk_full_of(exc, out)
            if full is None:
                traceback.print_exc(file=sys.stderr)
            result.update(status="failed", code=full.code if full else "internal",
                          message=full.message if full else f"{type(exc).__name__}: {exc}")
        results.append(result)
        progress.finished(weight)
        if result.get("code") == "disk_full":  # every later scene would fail the same way: the job stops
            ranks.set("disk_full", True)
            break
    return results


def _cancelled(ranks: Ranks, events: Events) -> bool:
    """Whether the job is to stop: a signal here (then posted for the others) or a cancel another process posted."""
    if events.cancelled:
        ranks.set("cancel", True)
        return True
    return ranks.world > 1 and bool(ranks.get("cancel"))


def _gather_results(ranks: Ranks, progress: Progress, events: Events, plan: Plan) -> list[dict[str, Any]]:
    """Every process's results (the first process waits for the others, reporting progress meanwhile)."""
    got: dict[int, list[dict[str, Any]]] = {}
    while len(got) < ranks.world:
        for r in range(ranks.world):
            if r not in got:
                res = ranks.get(f"results/{r}")
                if res is not None:
                    got[r] = res
        if len(got) == ranks.world:
            break
        progress.post()
        _cancelled(ranks, events)  # a cancel here reaches the others through the store
        silent = [r for r in range(ranks.world) if r not in got and time.time() - float(
            (ranks.get(f"progress/{r}") or {}).get("t", time.time())) > SILENT_RANK_S]
        if silent:
            raise EoSslError("process_lost", f"Process(es) {silent} of the job stopped reporting for "
                             f"{SILENT_RANK_S:.0f} s.", "Check their stderr; run the command again to resume "
                             "(finished maps are kept).")
        time.sleep(0.2)
    return [res for r in sorted(got) for res in got[r]]


def _finish_job(args: argparse.Namespace, events: Events, ranks: Ranks, plan: Plan, pred: Predictor, out_dir: Path,
                results: list[dict[str, Any]], t0: float, t_map: float) -> dict[str, Any]:
    events.progress(1000, 1000, stage="predict", scenes_done=len(plan.scenes), scenes=len(plan.scenes))
    maps = [out_dir / f"{plan.names[i]}.tif" for i in range(len(plan.scenes))
            if (out_dir / f"{plan.names[i]}.tif").is_file()]
    mapped = [r for r in results if r["status"] == "mapped"]
    for r in mapped:
        events.artifact("map", r["out"])
    failed = [r for r in results if r["status"] == "failed"]
    full = next((r for r in failed if r["code"] == "disk_full"), None)
    if full is not None:  # no mosaic on a full disk; the maps finished before are this job's and stay
        kept = f"{len(maps)} map(s) are complete and kept in {out_dir}" if maps else "no map was finished"
        raise EoSslError("disk_full", f"{full['message']} The job stopped at {full['name']}: {kept}.",
                         "Free some space, or give an --out-dir on another disk; run the same command again to map "
                         "the rest (finished scenes are not redone).")
    mosaics = write_mosaics(out_dir, maps, pred.meta["classes"], events) if maps else []
    for m in mosaics:
        events.artifact("mosaic", str(m), qml=str(m.with_suffix(".qml")))
    empty = [r for r in results if r["status"] == "empty"]
    elapsed = time.monotonic() - t0
    area = sum(r.get("area_km2", 0.0) for r in mapped)
    summary = {"out_dir": str(out_dir), "mosaics": [str(m) for m in mosaics], "scenes": len(plan.scenes),
               "mapped": len(mapped), "resumed": len(plan.done), "empty": [r["name"] for r in empty],
               "failed": [{k: r[k] for k in ("name", "scene", "code", "message")} for r in failed],
               "processes": ranks.world, "area_km2": round(area, 3), "elapsed_s": round(elapsed, 2),
               # from the moment every process was up: what the processes share, start-up left out
               "mapping_s": round(time.monotonic() - t_map, 2),
               "km2_per_s": round(area / max(elapsed, 1e-9), 3), "device": pred.device_text}
    if failed:
        for r in failed:
            events.warning("scene_failed", f"{r['name']} ({r['scene']}): {r['code']}: {r['message']}")
        where = f"The other maps and the mosaic are in {out_dir}." if mosaics else "No map was made."
        raise EoSslError("scenes_failed", f"{len(failed)} of {len(plan.scenes)} scene(s) failed: "
                         + ", ".join(r["name"] for r in failed[:5]) + (" ..." if len(failed) > 5 else "")
                         + f". {where}",
                         "See the warnings for each scene's reason; run the same command again to retry them "
                         "(finished scenes are not redone).")
    return summary


# -- the mosaic -----------------------------------------------------------------------------------------------------
def write_mosaics(out_dir: Path, maps: list[Path], classes: list[dict[str, Any]], events: Events) -> list[Path]:
    """``mosaic.vrt`` (+ ``.qml``) over the maps, in their order (later maps on top where they have data); one per
    CRS (``mosaic_EPSGxxxx.vrt``) when the maps lie in several."""
    import rasterio
    from pyproj import CRS

    by_crs: dict[str, list[tuple[Path, Any, int, int]]] = {}
    for m in maps:
        with rasterio.open(m) as src:
            by_crs.setdefault(src.crs.to_wkt(), []).append((m, src.transform, src.width, src.height))
    if len(by_crs) > 1:
        events.warning("several_crs", f"The maps lie in {len(by_crs)} CRSs: one mosaic per CRS. Give --crs to put "
                       "every scene on one grid (and get one mosaic).")
    colormap, tags, description = class_metadata(classes, {"EO_SSL_MOSAIC": {"maps": len(maps)}})
    names = [""] * (max(int(c["id"]) for c in classes) + 1)
    for c in classes:
        names[int(c["id"])] = str(c["name"])
    written = []
    for wkt, items in by_crs.items():
        epsg = CRS.from_wkt(wkt).to_epsg()
        name = "mosaic.vrt" if len(by_crs) == 1 else f"mosaic_EPSG{epsg or len(written)}.vrt"
        res = abs(items[0][1].a)
        x0 = min(t.c for _, t, _, _ in items)
        y1 = max(t.f for _, t, _, _ in items)
        x1 = max(t.c + t.a * w for _, t, w, _ in items)
        y0 = min(t.f + t.e * h for _, t, _, h in items)
        width, height = int(round((x1 - x0) / res)), int(round((y1 - y0) / res))
        transform = Affine(res, 0.0, x0, 0.0, -res, y1)
        sources = [vrt.Source(m, 1, src=(0, 0, w, h),
                              dst=((t.c - x0) / res, (y1 - t.f) / res, w * abs(t.a) / res, h * abs(t.e) / res))
                   for m, t, w, h in items]
        band = vrt.Band("uint8", sources, nodata=CLASS_NODATA, description=description, colormap=colormap,
                        categories=names)
        path = out_dir / name
        tmp = output_paths.temp_path(path)
        vrt.write_vrt(tmp, width, height, wkt, transform, [band], tags)
        os.replace(tmp, path)
        styles.paletted_qml(classes, path.with_suffix(".qml"))
        written.append(path)
    for stale in out_dir.glob("mosaic*.vrt"):  # a mosaic of an earlier run over other CRSs
        if stale not in written:
            stale.unlink()
            stale.with_suffix(".qml").unlink(missing_ok=True)
    return written
