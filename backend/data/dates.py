"""Which acquisition a model reads: the one date rule of ``finetune``, ``evaluate``, ``compare`` (from a chip store)
and ``predict``, ``embed`` (from the source scenes).

The encoders are 2D: a single-date model reads one acquisition. That is the Sentinel-2 date given with ``--date``,
else the only one, else the one with the most valid pixels inside the AOI (counted on the store's validity arrays,
or on a coarse copy of the grid for scenes); Sentinel-1 at the date nearest to it (:func:`pick_date`,
:func:`nearest_date`). ``--date composite``: every date, as a per-band median of the valid observations
(:func:`composite_of`). Models of a whole time series (the pixel classifiers) read every date they were trained on
(:func:`date_groups`).

No GIS library is imported at module level: training reads stores with numpy and torch alone.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.data.chipstore import ROW_CHUNK, ChipStore
from backend.data.feature_presets import FEATURES
from backend.errors import EoSslError

if TYPE_CHECKING:
    from backend.data.grid import Grid
    from backend.data.prepare import Inputs
    from backend.data.scenes import Acquisition
    from backend.events import Events
    from backend.models.inputs import InputSpec

#: ``--date composite``: a 2D model reads the per-band median of every valid observation of the period
COMPOSITE = "composite"
COMPOSITE_RULE = "composite: per-band median of the valid dates"
MOST_VALID = "most valid pixels in the AOI"


# -- the rule -------------------------------------------------------------------------------------------------------
def pick_date(dates: Sequence[dt.date | None], date: str | None, valid: Callable[[], Sequence[float]],
              not_found: Callable[[], EoSslError]) -> tuple[int, str, float | None]:
    """(index into ``dates``, the rule that chose it, the chosen date's ``valid`` score when scores were counted):
    ``date`` (ISO) when given (``not_found()`` is raised when no acquisition is of that day), else the only date,
    else the date with the highest ``valid()`` score (the first of equal ones). ``valid`` is called only then."""
    if date:
        try:
            wanted = dt.date.fromisoformat(date)
        except ValueError as exc:
            raise EoSslError("bad_date", f"--date {date!r} is not a date (YYYY-MM-DD).",
                             "Use e.g. 2017-02-16.") from exc
        if wanted not in dates:
            raise not_found()
        return list(dates).index(wanted), "given (--date)", None
    if len(dates) == 1:
        return 0, "only date", None
    scores = valid()
    best = int(np.argmax(scores))
    return best, MOST_VALID, float(scores[best])


def nearest_date(ref: dt.date | None, dates: Sequence[dt.date | None]) -> int | None:
    """Index of the date nearest to ``ref`` (the first of equally near ones); None when a date is unknown."""
    if ref is None or any(d is None for d in dates):
        return None
    return int(np.argmin([abs((d - ref).days) for d in dates]))  # type: ignore[operator]


def _day(iso: str | None) -> dt.date | None:
    return dt.date.fromisoformat(iso) if iso else None


def composite_of(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., T, C) values and (..., T) validity -> the (..., C) per-band median over the valid dates (0 where none)
    and the (...) validity (at least one valid date)."""
    v = valid.astype(bool)
    x = np.where(v[..., None], values.astype(np.float32), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no valid date, filled with 0 below
        med = np.nanmedian(x, axis=-2)
    return np.nan_to_num(med, nan=0.0), v.any(axis=-1)


# -- from a chip store (cube) ------------------------------------------------------------------------------------
@dataclass
class DateChoice:
    index: dict[str, int]  # sensor -> date index in the store (-1: every date, for a composite)
    dates: dict[str, str | None]  # sensor -> ISO date (or "composite of N dates")
    rule: str  # "only date" | "most valid pixels" | "given (--date)" | "composite ..."
    composite: dict[str, list[str | None]] | None = None  # sensor -> the dates of a composite

    def describe(self) -> str:
        parts = [f"{s.upper()} {d or '(undated)'}" for s, d in self.dates.items()]
        return f"{', '.join(parts)} ({self.rule})"


def choose_date(store: ChipStore, sensors: Sequence[str], date: str | None = None) -> DateChoice:
    """The acquisition a single-date model reads from a cube (see the module docstring); ``date="composite"``:
    every date, as a per-band median composite."""
    lead = "s2" if "s2" in sensors else sensors[0]
    if date == COMPOSITE:
        comp = {s: store.dates(s) for s in sensors}
        return DateChoice({s: -1 for s in sensors}, {s: f"composite of {len(d)} dates" for s, d in comp.items()},
                          COMPOSITE_RULE, comp)
    dates = store.dates(lead)

    def not_found() -> EoSslError:
        return EoSslError("date_not_found", f"{store.path} has no {lead.upper()} acquisition on {date}.",
                          f"Pick one of: {', '.join(d or '?' for d in dates)}.")

    t, rule, _ = pick_date([_day(d) for d in dates], date, lambda: valid_counts(store, lead), not_found)
    index, chosen = {lead: t}, {lead: dates[t]}
    for s in sensors:
        if s == lead:
            continue
        others = store.dates(s)
        ts = nearest_date(_day(dates[t]), [_day(d) for d in others])
        if ts is None:
            ts = int(np.argmax(valid_counts(store, s)))
        index[s], chosen[s] = ts, others[ts]
    return DateChoice(index, chosen, rule)


def valid_counts(store: ChipStore, sensor: str) -> np.ndarray:
    """Valid pixels per date of ``sensor`` (read in row chunks: memory bounded by the chunk)."""
    valid = store.array(f"{sensor}_valid")
    counts = np.zeros(valid.shape[2], np.int64)
    for r in range(0, valid.shape[0], ROW_CHUNK):
        counts += np.asarray(valid[r:r + ROW_CHUNK]).sum(axis=(0, 1), dtype=np.int64)
    return counts


# -- from source scenes -----------------------------------------------------------------------------------------
def coarse_grid(grid: Grid, max_side: int = 512) -> Grid:
    from affine import Affine

    from backend.data.grid import Grid

    f = max(1, math.ceil(max(grid.width, grid.height) / max_side))
    return Grid(grid.crs, grid.transform @ Affine.scale(f), math.ceil(grid.width / f), math.ceil(grid.height / f))


def valid_fractions(groups: list[Acquisition], band: str, grid: Grid, aoi_geom: Any) -> list[float]:
    """Share of the AOI with a valid ``band`` value per date, on a coarse copy of the grid (cheap: overviews)."""
    from rasterio.enums import Resampling
    from rasterio.features import geometry_mask
    from rasterio.windows import Window

    from backend.data.warp import GridReader

    cg = coarse_grid(grid)
    inside = geometry_mask([aoi_geom], out_shape=(cg.height, cg.width), transform=cg.transform, invert=True)
    n = max(1, int(inside.sum()))
    win = Window(0, 0, cg.width, cg.height)
    out = []
    with GridReader(cg, resampling=Resampling.nearest) as reader:
        for _, scenes in groups:
            ok = np.zeros((cg.height, cg.width), bool)
            for scene in scenes:
                _, v = reader.read(scene.band(band), win)
                ok |= v
            out.append(float((ok & inside).sum()) / n)
    return out


def choose_groups(inputs: Inputs, spec: InputSpec, date: str | None, events: Events) -> dict[str, Acquisition]:
    """The acquisition (scenes of one day) each sensor the model reads is taken from (see the module docstring)."""
    from backend.data.scenes import group_by_date

    chosen: dict[str, Acquisition] = {}
    s2_groups = group_by_date(inputs.s2)
    lead_band = spec.bands("s2")[0] if spec.bands("s2") else inputs.s2_bands[0]

    def not_found() -> EoSslError:
        return EoSslError("date_not_found", f"No Sentinel-2 scene of {date} among the inputs.",
                          "Pick one of: " + ", ".join(str(d) for d, _ in s2_groups) + ".")

    t, rule, share = pick_date([d for d, _ in s2_groups], date,
                               lambda: valid_fractions(s2_groups, lead_band, inputs.grid, inputs.aoi_geom), not_found)
    chosen["s2"] = s2_groups[t]
    if share is not None:
        rule += f" ({share:.0%})"
    if "s1" in spec.sensors:
        s1_groups = group_by_date(inputs.s1)
        ts = nearest_date(chosen["s2"][0], [d for d, _ in s1_groups])
        chosen["s1"] = s1_groups[0 if ts is None else ts]
    events.log("reading " + ", ".join(f"{s.upper()} {g[0] or '(undated)'} ({len(g[1])} scene(s))"
                                      for s, g in chosen.items()) + f"; S2 date: {rule}")
    return chosen


def calendar_groups(inputs: Inputs, meta: dict[str, Any]
                    ) -> tuple[dict[str, list[Acquisition]], dict[str, tuple[np.ndarray, int]], int]:
    """For a model of a season calendar (``input.calendar``): per sensor, the acquisitions that fall in its periods
    in the season the inputs cover best (the training year while they cover it as well; see
    :meth:`backend.data.calendar.Calendar.anchor`), the period of each and the number of periods, and that year. A
    period without any acquisition of a sensor is ``period_not_covered``, naming it."""
    from backend.data.calendar import Calendar
    from backend.data.scenes import group_by_date

    cal_d = meta["input"]["calendar"]
    cal = Calendar.from_dict(cal_d)
    sensors = list((meta["input"].get("dates") or {}).keys())
    groups_by = {s: group_by_date(inputs.scenes(s)) for s in sensors}
    for s, groups in groups_by.items():
        if not groups:
            raise EoSslError("missing_bands", f"The model reads {s.upper()}; no such input was given.",
                             f"Add --{s} with scenes of its season ({cal.describe()}).")
    lead = next(s for s in sensors if s != FEATURES)  # a calendar is of a dated sensor
    year = cal.anchor([d for d, _ in groups_by[lead]], prefer=cal_d.get("year"))
    # the periods the model's training data observed, per sensor (a pixel classifier's blocks): those must be covered
    blocks = ((((meta.get("architecture") or {}).get("features") or {}).get("input") or {}).get("blocks") or [])
    required = {b["sensor"]: b.get("observed") for b in blocks}
    out: dict[str, list[Acquisition]] = {}
    periods: dict[str, tuple[np.ndarray, int]] = {}
    for s, groups in groups_by.items():
        if s == FEATURES:  # an annual feature raster is read as it is, beside the season's composites
            out[s] = groups
            continue
        p = cal.check_covered(s, [d for d, _ in groups], year, required.get(s))
        keep = np.nonzero(p >= 0)[0]
        out[s] = [groups[i] for i in keep]
        periods[s] = (p[keep], cal.periods)
    return out, periods, year


def date_groups(inputs: Inputs, meta: dict[str, Any]) -> dict[str, list[Acquisition]]:
    """For a model that reads every date of its training store (``input.layout`` ``sensor-date-band`` without a
    calendar): the acquisition of each of its dates, per sensor. A date the inputs lack is an error: the model's
    features are per date."""
    from backend.data.scenes import group_by_date

    out: dict[str, list[Acquisition]] = {}
    for sensor, dates in (meta["input"].get("dates") or {}).items():
        groups = group_by_date(inputs.scenes(sensor))
        if not groups:
            raise EoSslError("missing_bands", f"The model reads {sensor.upper()}; no such input was given.",
                             f"Add --{sensor} with the scenes the model was trained on.")
        by_date = {str(d) if d else None: g for d, g in groups}
        if len(dates) == 1 and len(groups) == 1 and dates[0] is None:
            out[sensor] = [groups[0]]
            continue
        missing = [d for d in dates if d not in by_date]
        if missing:
            raise EoSslError("dates_mismatch", f"The model reads {sensor.upper()} on {len(dates)} date(s); the inputs "
                             f"lack {len(missing)}: {', '.join(str(d) for d in missing[:6])}"
                             + (" ..." if len(missing) > 6 else "") + ".",
                             "Give the scenes of the store the model was trained on (the same POI), or train the "
                             "model on a season calendar (finetune --arch pixel --period month, the default), which "
                             "reads any dates that cover its periods.")
        out[sensor] = [(dt.date.fromisoformat(d) if d else None, by_date[d]) for d in dates]
    return out
