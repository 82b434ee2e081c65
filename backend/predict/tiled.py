"""Tiled, blended inference over a raster too large for memory, streamed one row of tiles at a time.

Tiles of ``tile`` px start every ``stride = tile * (1 - overlap)`` px from the grid's top-left corner; the last row
and column of tiles may reach past the grid (padded with nodata), so every tile has the same shape and batches well.
Each tile's logits are weighted by a smooth window ``w(i, j) = sin²(π(i+½)/t) · sin²(π(j+½)/t)`` (strictly positive,
close to 0 at the tile border where a CNN's zero padding corrupts its output) and summed; a pixel's logits are the
weighted mean over the tiles covering it. The mean, not the maximum or the last tile's value, is what removes seams:
tile borders contribute little, and a pixel's value changes smoothly from one tile to the next.

Memory: the accumulators and the input hold one row of tiles (``tile`` x grid width x classes / channels), the
batch holds ``batch_size`` tiles, the writer one row of 512-px blocks, the read-ahead one strip of ``stride`` rows.
None of it grows with the raster's height. Tiles with no valid pixel (outside the AOI, nodata) are skipped.

Rows move in strips: after row ``i`` of tiles, the grid rows above the next row's top are final (no later tile
touches them); they are turned into classes and confidence and handed to the writer, and the buffers shift up by
``stride`` rows. The next strip of input (the ``stride`` rows the next tiles need beyond what is buffered) is read by
a background thread while the model runs (:class:`ReadAhead`): reading and inference overlap, each source pixel is
read once.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch


def blend_window(size: int) -> np.ndarray:
    """(size, size) float32 weights: sin² in each direction, > 0 everywhere, 1 at the centre."""
    w1 = np.sin(np.pi * (np.arange(size) + 0.5) / size) ** 2
    return np.outer(w1, w1).astype(np.float32)


@dataclass(frozen=True)
class TilePlan:
    height: int
    width: int
    tile: int
    stride: int

    @property
    def nx(self) -> int:
        return 1 if self.width <= self.tile else math.ceil((self.width - self.tile) / self.stride) + 1

    @property
    def ny(self) -> int:
        return 1 if self.height <= self.tile else math.ceil((self.height - self.tile) / self.stride) + 1

    @property
    def xs(self) -> list[int]:
        return [j * self.stride for j in range(self.nx)]

    @property
    def ys(self) -> list[int]:
        return [i * self.stride for i in range(self.ny)]

    @property
    def padded_width(self) -> int:
        return (self.nx - 1) * self.stride + self.tile

    @property
    def padded_height(self) -> int:
        return (self.ny - 1) * self.stride + self.tile

    @property
    def n_tiles(self) -> int:
        return self.nx * self.ny

    def strips(self) -> list[tuple[int, int]]:
        """Grid rows [r0, r1) each row of tiles needs beyond the rows the previous one already buffered."""
        out = [(0, self.tile)]
        for y0, y1 in zip(self.ys, self.ys[1:]):
            out.append((y0 + self.tile, y1 + self.tile))
        return out


def plan_tiles(height: int, width: int, tile: int, overlap: float) -> TilePlan:
    if not 0 <= overlap < 1:
        raise ValueError("overlap must be in [0, 1)")
    stride = max(1, int(round(tile * (1 - overlap))))
    return TilePlan(height, width, tile, min(stride, tile))


class ReadAhead:
    """Runs ``produce(r0, r1)`` for each strip in a background thread, ``depth`` strips ahead of the consumer.

    One thread does all the reading (GDAL handles are not shared between threads); GDAL releases the GIL while it
    decodes, so reading overlaps inference. An exception in the thread is raised in the consumer.
    """

    _END = object()

    def __init__(self, strips: list[tuple[int, int]], produce: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
                 depth: int = 1, setup: Callable[[], object] | None = None,
                 check: Callable[[], None] | None = None) -> None:
        self.strips, self.produce, self.setup, self.check = strips, produce, setup, check
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="eo-ssl-read-ahead", daemon=True)
        self.thread.start()

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        ctx = None
        try:
            if self.setup is not None:
                ctx = self.setup()
                ctx.__enter__()  # type: ignore[attr-defined]
            for r0, r1 in self.strips:
                if self.stop.is_set() or not self._put(self.produce(r0, r1)):
                    return
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(exc)
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            try:
                item = self.queue.get(timeout=0.2)
            except queue.Empty:  # a slow read: ``check`` (cancellation) still runs a few times a second
                if self.check is not None:
                    self.check()
                continue
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


#: columns turned into classes at a time (the softmax's temporaries stay small however wide the raster is)
FINISH_COLUMNS = 2048


def _finish_rows(acc: torch.Tensor, wsum: torch.Tensor, valid: np.ndarray, n: int, width: int,
                 device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Classes (uint8, 255 invalid) and max softmax (float32, -1 invalid) of the first ``n`` buffered rows."""
    cls_out = np.empty((n, width), np.uint8)
    conf_out = np.empty((n, width), np.float32)
    for c0 in range(0, width, FINISH_COLUMNS):
        c1 = min(c0 + FINISH_COLUMNS, width)
        probs = torch.softmax(acc[:, :n, c0:c1] / wsum[:n, c0:c1].clamp_min(1e-12), dim=0)
        conf, cls = probs.max(dim=0)
        ok = torch.from_numpy(valid[:n, c0:c1]).to(device)
        cls_out[:, c0:c1] = torch.where(ok, cls, torch.full_like(cls, 255)).to(torch.uint8).cpu().numpy()
        conf_out[:, c0:c1] = torch.where(ok, conf, torch.full_like(conf, -1.0)).float().cpu().numpy()
    return cls_out, conf_out


ModelFn = Callable[[np.ndarray], torch.Tensor]
Sink = Callable[..., None]
#: (blended sums, weights, validity, rows, width, device) -> the arrays handed to the sink for those rows
Finish = Callable[[torch.Tensor, torch.Tensor, np.ndarray, int, int, torch.device], tuple[np.ndarray, ...]]


def finish_features(acc: torch.Tensor, wsum: torch.Tensor, valid: np.ndarray, n: int, width: int,
                    device: torch.device) -> tuple[np.ndarray]:
    """The blended values themselves (C, n, width) float32, NaN where invalid (an embedding, not classes)."""
    out = np.empty((acc.shape[0], n, width), np.float32)
    for c0 in range(0, width, FINISH_COLUMNS):
        c1 = min(c0 + FINISH_COLUMNS, width)
        mean = acc[:, :n, c0:c1] / wsum[:n, c0:c1].clamp_min(1e-12)
        ok = torch.from_numpy(valid[:n, c0:c1]).to(device)
        out[:, :, c0:c1] = torch.where(ok, mean, torch.full_like(mean, float("nan"))).float().cpu().numpy()
    return (out,)


@dataclass
class TiledStats:
    """Counts, and where the main thread's time went (seconds): waiting for the read-ahead's next strip, running
    the model and blending (launches on a GPU), turning finished rows into classes (on a GPU: also waiting for it to
    finish, and the copy back), and handing rows to the writer."""

    tiles: int = 0
    tiles_skipped: int = 0
    batches: int = 0
    read_wait_s: float = 0.0
    model_s: float = 0.0
    finish_rows_s: float = 0.0
    write_s: float = 0.0


def predict_tiled(plan: TilePlan, strips: Iterator[tuple[np.ndarray, np.ndarray]], model_fn: ModelFn,
                  num_classes: int, n_channels: int, *, batch_size: int, device: torch.device, sink: Sink,
                  on_row: Callable[[int, int], None] | None = None,
                  on_batch: Callable[[], None] | None = None, finish: Finish | None = None) -> TiledStats:
    """Run the blended tiled inference (see the module docstring).

    ``strips`` yields, for each of ``plan.strips()``, the normalised input (C, rows, padded width) float32 and its
    validity (rows, padded width) bool (rows past the grid: anything, invalid). ``model_fn`` maps a (B, C, t, t)
    float32 batch to (B, K, t, t) or (B, K) logits on ``device``. ``sink(row0, classes, confidence)`` receives the
    finished rows in order: uint8 class ids with 255 where invalid, float32 max-softmax with -1 where invalid.
    ``on_row(done, total)`` is called after each row of tiles, ``on_batch()`` before each batch (e.g. to cancel).
    ``finish`` replaces that last step (e.g. :func:`finish_features` for an embedding: ``num_classes`` is then the
    number of output channels, and the sink receives what ``finish`` returns).
    """
    finish = finish or _finish_rows
    t, s, wp = plan.tile, plan.stride, plan.padded_width
    data = np.zeros((n_channels, t, wp), np.float32)
    valid = np.zeros((t, wp), bool)
    acc = torch.zeros((num_classes, t, wp), dtype=torch.float32, device=device)
    wsum = torch.zeros((t, wp), dtype=torch.float32, device=device)
    win = torch.from_numpy(blend_window(t)).to(device)
    stats = TiledStats()
    filled = 0
    it = iter(strips)
    for i, y in enumerate(plan.ys):
        t0 = time.perf_counter()
        block, bvalid = next(it)
        t1 = time.perf_counter()
        stats.read_wait_s += t1 - t0
        n_new = t - filled
        data[:, filled:t] = block[:, :n_new]
        valid[filled:t] = bvalid[:n_new]
        todo = [x for x in plan.xs if valid[:, x:x + t].any()]
        stats.tiles += len(todo)
        stats.tiles_skipped += plan.nx - len(todo)
        for k in range(0, len(todo), batch_size):
            if on_batch is not None:
                on_batch()
            chunk = todo[k:k + batch_size]
            batch = np.stack([data[:, :, x:x + t] for x in chunk])
            logits = model_fn(batch)
            if logits.ndim == 2:  # a patch classifier: one class per tile
                logits = logits[:, :, None, None].expand(-1, -1, t, t)
            for b, x in enumerate(chunk):
                acc[:, :, x:x + t].add_(logits[b] * win)
                wsum[:, x:x + t].add_(win)
            stats.batches += 1
        last = i == plan.ny - 1
        n_done = min(t if last else s, plan.height - y)
        t2 = time.perf_counter()
        stats.model_s += t2 - t1
        if n_done > 0:
            rows = finish(acc, wsum, valid, n_done, plan.width, device)
            t3 = time.perf_counter()
            sink(y, *rows)
            stats.finish_rows_s += t3 - t2
            stats.write_s += time.perf_counter() - t3
        if not last:
            keep = t - s
            data[:, :keep] = data[:, s:t]
            valid[:keep] = valid[s:t]
            acc[:, :keep] = acc[:, s:t].clone()
            acc[:, keep:] = 0
            wsum[:keep] = wsum[s:t].clone()
            wsum[keep:] = 0
            filled = keep
        if on_row is not None:
            on_row(i + 1, plan.ny)
    return stats
