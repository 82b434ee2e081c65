"""The tiled inference engine on its own (no rasters): blending, streaming order, read-ahead, memory bounds.

A "model" whose logits are a per-pixel function of its input must come out of the tiled, blended inference exactly
as if applied to the whole raster at once, for any tile size, overlap and raster size (including rasters smaller than
a tile, and tiles reaching past the edge): the window weights cancel in the weighted mean. Tiles without a valid pixel
are skipped, invalid pixels come out as nodata, and rows reach the sink top to bottom, each exactly once.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.predict.tiled import ReadAhead, blend_window, plan_tiles, predict_tiled

K = 3


def _scene(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(2, h, w)).astype(np.float32)
    valid = np.ones((h, w), bool)
    valid[: h // 5, : w // 3] = False  # a nodata corner
    return data, valid


def _per_pixel(x: np.ndarray) -> np.ndarray:
    """(B, 2, t, t) -> (B, K, t, t) logits that depend on each pixel only."""
    return np.stack([x[:, 0], x[:, 1], 0.5 * x[:, 0] - x[:, 1]], axis=1)


def _run(data: np.ndarray, valid: np.ndarray, tile: int, overlap: float, batch_size: int = 3):
    h, w = valid.shape
    plan = plan_tiles(h, w, tile, overlap)
    seen_rows: list[tuple[int, int]] = []
    out_cls = np.full((h, w), 77, np.uint8)
    out_conf = np.full((h, w), 7.0, np.float32)

    def produce(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.zeros((2, r1 - r0, plan.padded_width), np.float32)
        v = np.zeros((r1 - r0, plan.padded_width), bool)
        g0, g1 = max(r0, 0), min(r1, h)
        if g1 > g0:
            x[:, g0 - r0:g1 - r0, :w] = data[:, g0:g1]
            v[g0 - r0:g1 - r0, :w] = valid[g0:g1]
        return x, v

    def sink(row0: int, cls: np.ndarray, conf: np.ndarray) -> None:
        seen_rows.append((row0, cls.shape[0]))
        assert cls.shape[1] == w and conf.shape == cls.shape
        out_cls[row0:row0 + cls.shape[0]] = cls
        out_conf[row0:row0 + cls.shape[0]] = conf

    calls = []

    def model_fn(batch: np.ndarray) -> torch.Tensor:
        assert batch.shape[1:] == (2, tile, tile) and 1 <= len(batch) <= batch_size
        calls.append(len(batch))
        return torch.from_numpy(_per_pixel(batch))

    ahead = ReadAhead(plan.strips(), produce, depth=1)
    try:
        stats = predict_tiled(plan, iter(ahead), model_fn, K, 2, batch_size=batch_size, device=torch.device("cpu"),
                              sink=sink)
    finally:
        ahead.close()
    return out_cls, out_conf, seen_rows, stats, plan


@pytest.mark.parametrize(("h", "w", "tile", "overlap"), [(100, 130, 32, 0.25), (100, 130, 64, 0.5),
                                                         (70, 45, 64, 0.25), (96, 96, 32, 0.0), (33, 200, 32, 0.75)])
def test_blended_tiles_equal_the_whole_raster(h, w, tile, overlap):
    data, valid = _scene(h, w)
    cls, conf, rows, stats, plan = _run(data, valid, tile, overlap)
    probs = torch.softmax(torch.from_numpy(_per_pixel(data[None]))[0], dim=0)
    ref_conf, ref_cls = probs.max(dim=0)
    ok = valid
    np.testing.assert_array_equal(cls[ok], ref_cls.numpy()[ok])
    np.testing.assert_allclose(conf[ok], ref_conf.numpy()[ok], atol=1e-5)
    assert (cls[~ok] == 255).all() and (conf[~ok] == -1).all()
    # rows arrive top to bottom, contiguous, each once
    assert rows[0][0] == 0 and sum(n for _, n in rows) == h
    assert all(r0 + n == nxt for (r0, n), (nxt, _) in zip(rows, rows[1:]))
    assert stats.tiles + stats.tiles_skipped == plan.n_tiles


def test_tiles_without_valid_pixels_are_skipped():
    data, valid = _scene(128, 128)
    valid[:, 64:] = False  # the right half is outside the AOI
    _, _, _, stats, plan = _run(data, valid, 32, 0.0)
    assert stats.tiles_skipped == plan.n_tiles // 2


def test_plan_covers_the_grid_with_uniform_tiles():
    plan = plan_tiles(10980, 10980, 256, 0.25)
    assert plan.stride == 192 and plan.xs[-1] + 256 >= 10980 and plan.xs[-2] + 256 < 10980
    strips = plan.strips()
    assert strips[0] == (0, 256) and all(r1 - r0 == 192 for r0, r1 in strips[1:])
    assert strips[-1][1] == plan.ys[-1] + 256  # every row read once, in order
    assert all(a[1] == b[0] for a, b in zip(strips, strips[1:]))


def test_blend_window_is_positive_and_peaks_in_the_centre():
    w = blend_window(64)
    assert w.min() > 0 and w.max() <= 1 and w[32, 32] == pytest.approx(w.max(), rel=1e-3)
    assert w[0, 0] < 1e-3


def test_read_ahead_hands_exceptions_to_the_consumer():
    def produce(r0: int, r1: int):
        if r0 > 0:
            raise OSError("disk on fire")
        return np.zeros(1), np.zeros(1)

    ahead = ReadAhead([(0, 1), (1, 2), (2, 3)], produce)
    it = iter(ahead)
    next(it)
    with pytest.raises(OSError, match="disk on fire"):
        next(it)
    ahead.close()


class Stop(Exception):
    pass


def test_cancellation_is_checked_before_every_batch():
    """``on_batch`` runs before each batch, so a cancel stops a row of many tiles after the batch in flight."""
    data, valid = _scene(64, 256)
    plan = plan_tiles(64, 256, 32, 0.0)  # two rows of 8 tiles
    batches = []

    def model_fn(batch: np.ndarray) -> torch.Tensor:
        batches.append(len(batch))
        return torch.from_numpy(_per_pixel(batch))

    def on_batch() -> None:
        if len(batches) == 3:
            raise Stop

    def strips():
        for r0, r1 in plan.strips():
            x = np.zeros((2, r1 - r0, plan.padded_width), np.float32)
            x[:, :, :256] = data[:, r0:r1]
            yield x, np.ones((r1 - r0, plan.padded_width), bool)

    with pytest.raises(Stop):
        predict_tiled(plan, strips(), model_fn, K, 2, batch_size=1, device=torch.device("cpu"),
                      sink=lambda *a: None, on_batch=on_batch)
    assert batches == [1, 1, 1]  # stopped within the first row of 8 tiles


def test_read_ahead_checks_while_waiting_for_a_slow_read():
    """A strip that takes long to read does not delay cancellation: ``check`` runs while the consumer waits."""
    import time

    def produce(r0: int, r1: int):
        time.sleep(3.0)
        return np.zeros(1), np.zeros(1)

    calls = []

    def check() -> None:
        calls.append(time.monotonic())
        raise Stop

    ahead = ReadAhead([(0, 1)], produce, check=check)
    t0 = time.monotonic()
    with pytest.raises(Stop):
        next(iter(ahead))
    assert time.monotonic() - t0 < 1.0 and len(calls) == 1
    ahead.close()


def test_stored_values_standardised_on_the_device_equal_standardised_strips():
    """Strips of stored uint16 values with ``normalize=(mean, std)`` give the map of strips the reader standardised
    itself (invalid pixels 0 in both)."""
    rng = np.random.default_rng(1)
    h, w, tile = 90, 150, 32
    raw = rng.integers(1, 5000, size=(2, h, w)).astype(np.uint16)
    valid = np.ones((h, w), bool)
    valid[10:30, 40:90] = False
    mean, std = np.array([2000.0, 2600.0], np.float32), np.array([900.0, 1300.0], np.float32)
    plan = plan_tiles(h, w, tile, 0.25)

    def strips(standardise: bool):
        for r0, r1 in plan.strips():
            x = np.zeros((2, r1 - r0, plan.padded_width), np.float32 if standardise else np.uint16)
            v = np.zeros((r1 - r0, plan.padded_width), bool)
            g1 = min(r1, h)
            if g1 > r0:
                x[:, :g1 - r0, :w] = raw[:, r0:g1]
                v[:g1 - r0, :w] = valid[r0:g1]
            if standardise:
                x = (x - mean[:, None, None]) / std[:, None, None]
                x[:, ~v] = 0.0
            yield x, v

    maps = []
    for standardise in (True, False):
        out = np.zeros((h, w), np.float32)

        def sink(row0: int, cls: np.ndarray, conf: np.ndarray) -> None:
            out[row0:row0 + cls.shape[0]] = conf  # noqa: B023 - used at once

        predict_tiled(plan, strips(standardise), lambda b: torch.from_numpy(_per_pixel(b.numpy())), K, 2,
                      batch_size=2, device=torch.device("cpu"), sink=sink,
                      normalize=None if standardise else (mean, std))
        maps.append(out)
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-5)
    assert (maps[0][~valid] == -1).all() and (maps[0][valid] > 0).all()
