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

import contextlib
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
        #: seconds the thread spent in ``produce`` (reading, decoding, warping): the reading stage's own time
        self.busy_s = 0.0
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
                if self.stop.is_set():
                    return
                t0 = time.perf_counter()
                item = self.produce(r0, r1)
                self.busy_s += time.perf_counter() - t0
                if not self._put(item):
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


def _finish_rows(acc: torch.Tensor, wsum: torch.Tensor, valid: torch.Tensor, n: int, width: int,
                 device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Classes (uint8, 255 invalid) and max softmax (float32, -1 invalid) of the first ``n`` buffered rows.

    The highest softmax probability is ``1 / sum_k exp(z_k - max_k z)``: one exponential per class and pixel and no
    normalised probabilities. On a GPU this runs there; only the uint8 and float32 rows come back."""
    cls_out = torch.empty((n, width), dtype=torch.uint8, device=device)
    conf_out = torch.empty((n, width), dtype=torch.float32, device=device)
    for c0 in range(0, width, FINISH_COLUMNS):
        c1 = min(c0 + FINISH_COLUMNS, width)
        z = acc[:, :n, c0:c1] * wsum[:n, c0:c1].reciprocal()
        top, cls = z.max(dim=0)
        conf = z.sub_(top).exp_().sum(dim=0).reciprocal_()
        cls_out[:, c0:c1] = cls
        conf_out[:, c0:c1] = conf
    bad = ~valid[:n, :width]
    return (cls_out.masked_fill_(bad, 255).cpu().numpy(), conf_out.masked_fill_(bad, -1.0).cpu().numpy())


ModelFn = Callable[[torch.Tensor], torch.Tensor]
Sink = Callable[..., None]
#: (blended sums, weights, validity, rows, width, device) -> the arrays handed to the sink for those rows
Finish = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int, int, torch.device], tuple[np.ndarray, ...]]


def finish_features(acc: torch.Tensor, wsum: torch.Tensor, valid: torch.Tensor, n: int, width: int,
                    device: torch.device) -> tuple[np.ndarray]:
    """The blended values themselves (C, n, width) float32, NaN where invalid (an embedding, not classes)."""
    out = torch.empty((acc.shape[0], n, width), dtype=torch.float32, device=device)
    for c0 in range(0, width, FINISH_COLUMNS):
        c1 = min(c0 + FINISH_COLUMNS, width)
        out[:, :, c0:c1] = acc[:, :n, c0:c1] / wsum[:n, c0:c1]
    return (out.masked_fill_(~valid[:n, :width], float("nan")).cpu().numpy(),)


@dataclass
class TiledStats:
    """Counts, and where the time went (seconds). Main thread: waiting for the read-ahead's next strip
    (``read_wait_s``), putting it on the device and normalising it (``upload_s``), cutting tiles into batches and
    running the model (``model_s``; on a GPU the launch only, the device works on while the host goes on), blending
    the logits (``blend_s``), turning finished rows into classes and confidence (``finish_s``; on a GPU also waiting
    for the device and the copy back) and handing them to the sink (``write_s``: with a write-behind sink, only the
    wait for a free slot)."""

    tiles: int = 0
    tiles_skipped: int = 0
    batches: int = 0
    read_wait_s: float = 0.0
    upload_s: float = 0.0
    model_s: float = 0.0
    blend_s: float = 0.0
    finish_s: float = 0.0
    write_s: float = 0.0


def _coverage(starts: list[int], tile: int, length: int, w1: np.ndarray) -> np.ndarray:
    """Sum of the 1-D window over the tiles starting at ``starts``, for each of ``length`` positions."""
    out = np.zeros(length, np.float64)
    for s in starts:
        out[s:s + tile] += w1
    return out.astype(np.float32)


#: torch threads of the element-wise work on the CPU (see :func:`_threads`)
ELEMENTWISE_THREADS = 1


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads. On the CPU, the blending, standardising and softmax run on one thread and the
    model on torch's usual number: those operations are bound by memory, not arithmetic, the read-ahead and
    write-behind threads use the other cores meanwhile, and two OpenMP threads that spin-wait for each other on a
    busy 2-core machine made them ~10x slower (the blend of a tile: 0.7 ms on one thread, 10 ms on two, measured
    with other jobs running). Switching costs ~10 µs."""
    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def predict_tiled(plan: TilePlan, strips: Iterator[tuple[np.ndarray, np.ndarray]], model_fn: ModelFn,
                  num_classes: int, n_channels: int, *, batch_size: int, device: torch.device, sink: Sink,
                  on_row: Callable[[int, int], None] | None = None,
                  on_batch: Callable[[], None] | None = None, finish: Finish | None = None,
                  normalize: tuple[np.ndarray, np.ndarray] | None = None) -> TiledStats:
    """Run the blended tiled inference (see the module docstring).

    ``strips`` yields, for each of ``plan.strips()``, the input (C, rows, padded width) and its validity (rows, padded
    width) bool (rows past the grid: anything, invalid): either the model's input already (float32; invalid pixels
    as the model wants them) or, with ``normalize = (mean, std)`` per channel, raw values in any dtype, standardised
    here on ``device`` (invalid pixels set to 0). ``model_fn`` maps a (B, C, t, t) float32 batch on ``device`` to
    (B, K, t, t) or (B, K) logits on ``device``. ``sink(row0, classes, confidence)`` receives the finished rows in
    order: uint8 class ids with 255 where invalid, float32 max-softmax with -1 where invalid. ``on_row(done, total)``
    is called after each row of tiles, ``on_batch()`` before each batch (e.g. to cancel). ``finish`` replaces that
    last step (e.g. :func:`finish_features` for an embedding: ``num_classes`` is then the number of output channels,
    and the sink receives what ``finish`` returns).
    """
    run = _TiledRun(plan, model_fn, num_classes, n_channels, batch_size, device, finish or _finish_rows, normalize)
    model_threads = torch.get_num_threads()
    with _threads(ELEMENTWISE_THREADS if device.type == "cpu" else model_threads):
        it = iter(strips)
        for i in range(plan.ny):
            t0 = time.perf_counter()
            strip = next(it)
            run.stats.read_wait_s += time.perf_counter() - t0
            run.row(i, strip, sink, on_batch, model_threads)
            if on_row is not None:
                on_row(i + 1, plan.ny)
    return run.stats


class _TiledRun:
    """The buffers of :func:`predict_tiled`, on its device: one row of tiles of input (``data``, ``valid``) and of
    blended logits (``acc``).

    The weights of a pixel sum over every tile covering it. A valid pixel's tiles all hold a valid pixel (itself), so
    none of them is skipped, and the window being separable, that sum is ``cover_rows(r) * cover_cols(c)``: computed
    once, not accumulated tile by tile."""

    def __init__(self, plan: TilePlan, model_fn: ModelFn, num_classes: int, n_channels: int, batch_size: int,
                 device: torch.device, finish: Finish, normalize: tuple[np.ndarray, np.ndarray] | None) -> None:
        self.plan, self.model_fn, self.batch_size, self.device, self.finish = plan, model_fn, batch_size, device, finish
        t, wp = plan.tile, plan.padded_width
        self.data = torch.zeros((n_channels, t, wp), dtype=torch.float32, device=device)
        self.valid = torch.zeros((t, wp), dtype=torch.bool, device=device)
        self.valid_np = np.zeros((t, wp), bool)  # the same on the host: which tiles to skip, without a device sync
        self.acc = torch.zeros((num_classes, t, wp), dtype=torch.float32, device=device)
        w1 = np.sin(np.pi * (np.arange(t) + 0.5) / t) ** 2
        self.win = torch.from_numpy(np.outer(w1, w1).astype(np.float32)).to(device)
        self.cover_cols = torch.from_numpy(_coverage(plan.xs, t, wp, w1)).to(device)
        self.cover_rows = _coverage(plan.ys, t, plan.padded_height, w1)
        self.scale = self.shift = None
        if normalize is not None:
            mean, std = (np.asarray(v, np.float32).reshape(-1, 1, 1) for v in normalize)
            self.scale = torch.from_numpy(1.0 / std).to(device)
            self.shift = torch.from_numpy(-mean / std).to(device)
        self.filled = 0  # buffered rows carried over from the previous row of tiles
        self.stats = TiledStats()

    def upload(self, block: np.ndarray, bvalid: np.ndarray) -> None:
        """The rows of a strip below the carried-over ones, onto the device, standardised."""
        n_new = self.plan.tile - self.filled
        src = torch.from_numpy(np.ascontiguousarray(block[:, :n_new]))
        vsrc = torch.from_numpy(np.ascontiguousarray(bvalid[:n_new]))
        unsigned = False
        if self.device.type == "cuda":  # pinned by the reader: the copies overlap the host's work
            if src.dtype == torch.uint16:  # as int16 (same bits): CUDA implements few operations on uint16
                src, unsigned = src.view(torch.int16), True
            src, vsrc = src.to(self.device, non_blocking=True), vsrc.to(self.device, non_blocking=True)
        dst = self.data[:, self.filled:]
        dst.copy_(src)  # (any dtype: one conversion, then the affine in place)
        if unsigned:
            dst.remainder_(65536.0)
        if self.scale is not None:
            torch.addcmul(self.shift, dst, self.scale, out=dst)
            if not bvalid[:n_new].all():
                dst.masked_fill_(~vsrc, 0.0)
        self.valid[self.filled:] = vsrc
        self.valid_np[self.filled:] = bvalid[:n_new]

    def row(self, i: int, strip: tuple[np.ndarray, np.ndarray], sink: Sink, on_batch: Callable[[], None] | None,
            model_threads: int) -> None:
        """Row ``i`` of tiles: upload its strip, run and blend its tiles, hand its finished rows to ``sink``."""
        plan, st, t = self.plan, self.stats, self.plan.tile
        t0 = time.perf_counter()
        self.upload(*strip)
        t1 = time.perf_counter()
        st.upload_s += t1 - t0
        todo = [x for x in plan.xs if self.valid_np[:, x:x + t].any()]
        st.tiles += len(todo)
        st.tiles_skipped += plan.nx - len(todo)
        for k in range(0, len(todo), self.batch_size):
            if on_batch is not None:
                on_batch()
            ta = time.perf_counter()
            chunk = todo[k:k + self.batch_size]
            batch = torch.stack([self.data[:, :, x:x + t] for x in chunk])
            with _threads(model_threads):
                logits = self.model_fn(batch).float()
            tb = time.perf_counter()
            if logits.ndim == 2:  # a patch classifier: one class per tile
                logits = logits[:, :, None, None]
            else:
                logits = logits.contiguous()  # channels_last outputs: the blend reads them row by row
            for b, x in enumerate(chunk):
                self.acc[:, :, x:x + t].addcmul_(logits[b], self.win)
            st.batches += 1
            st.model_s += tb - ta
            st.blend_s += time.perf_counter() - tb
        y = plan.ys[i]
        last = i == plan.ny - 1
        n_done = min(t if last else plan.stride, plan.height - y)
        if n_done > 0:
            t2 = time.perf_counter()
            rows_w = torch.from_numpy(self.cover_rows[y:y + n_done, None].copy()).to(self.device)
            rows = self.finish(self.acc, rows_w * self.cover_cols, self.valid, n_done, plan.width, self.device)
            t3 = time.perf_counter()
            sink(y, *rows)
            st.finish_s += t3 - t2
            st.write_s += time.perf_counter() - t3
        if not last:  # shift the buffers up by ``stride`` rows (a copy in place when source and target are apart)
            keep, s = t - plan.stride, plan.stride
            for buf in (self.data, self.valid, self.acc):
                buf[..., :keep, :] = buf[..., s:t, :] if keep <= s else buf[..., s:t, :].clone()
            self.valid_np[:keep] = self.valid_np[s:t]
            self.acc[:, keep:] = 0
            self.filled = keep
