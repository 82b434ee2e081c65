"""The season calendar: a time series read on fixed periods of the season instead of its acquisition dates.

A model trained on the acquisitions of one tile, orbit or year cannot read another's: the dates differ. A
:class:`Calendar` names periods of the season instead (monthly by default, or steps of N days), anchored to a day of
the year (``start``, ``MM-DD``): the model of 2018-03..10 reads 2019-03..10. Each period's value is the per-band
median of the valid observations that fall in it (:func:`composite_periods`), NaN where the period has none: the
pixel classifiers fill such gaps along time and keep which periods were observed (:mod:`backend.pixel.features`).

Which year a set of acquisitions is read in (:meth:`Calendar.anchor`): the year whose periods hold the most
observed periods, then the most acquisitions, then the latest. A period without any acquisition at all is refused
(:meth:`Calendar.check_covered`), naming it: a model cannot map a month it has never seen data of.

Numpy and the standard library only: training reads stores without any GIS library.
"""

from __future__ import annotations

import calendar as _cal
import datetime as dt
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.errors import EoSslError

#: ``--period``: calendar steps ("month", or "<N>d" days), or "dates" (the acquisition dates themselves, the old way)
PERIOD_DATES = "dates"
DEFAULT_PERIOD = "month"
_DAYS = re.compile(r"^(\d{1,3})d$")


def parse_period(text: str) -> str:
    """``month`` | ``<N>d`` (1 <= N <= 366) | ``dates``; raises ``bad_argument`` otherwise."""
    t = (text or "").strip().lower()
    if t in (DEFAULT_PERIOD, PERIOD_DATES):
        return t
    m = _DAYS.match(t)
    if m and 1 <= int(m.group(1)) <= 366:
        return f"{int(m.group(1))}d"
    raise EoSslError("bad_argument", f"--period {text!r} is not a calendar step.",
                     "Use month (default), a number of days such as 10d, or dates (the acquisition dates).")


def _add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    return dt.date(year, month, min(d.day, _cal.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Calendar:
    """``periods`` consecutive periods of ``step`` ("month" or "<N>d") from the day ``start`` ("MM-DD") of a year."""

    start: str
    step: str
    periods: int

    def __post_init__(self) -> None:
        if not re.match(r"^\d{2}-\d{2}$", self.start):
            raise EoSslError("bad_argument", f"Season start {self.start!r} is not MM-DD.", "Use e.g. 03-01.")
        if self.periods < 1:
            raise EoSslError("bad_argument", "A season calendar needs at least one period.", "Widen --season.")
        parse_period(self.step)

    def first_day(self, year: int) -> dt.date:
        month, day = (int(v) for v in self.start.split("-"))
        return dt.date(year, month, min(day, _cal.monthrange(year, month)[1]))

    def bounds(self, year: int) -> list[tuple[dt.date, dt.date]]:
        """Each period's [first day, day after its last) in the season that starts in ``year``."""
        d0 = self.first_day(year)
        if self.step == "month":
            edges = [_add_months(d0, i) for i in range(self.periods + 1)]
        else:
            n = int(self.step[:-1])
            edges = [d0 + dt.timedelta(days=n * i) for i in range(self.periods + 1)]
        return list(zip(edges[:-1], edges[1:]))

    def labels(self, year: int) -> list[str]:
        """Period names in the season of ``year``: ``2018-03`` for months, the first day for N-day steps."""
        return [a.strftime("%Y-%m") if self.step == "month" else a.isoformat() for a, _ in self.bounds(year)]

    def months(self, year: int) -> list[int]:
        """The month (0..11) each period starts in (for encoders with a month encoding, e.g. Presto)."""
        return [a.month - 1 for a, _ in self.bounds(year)]

    def assign(self, dates: Sequence[dt.date | str | None], year: int) -> np.ndarray:
        """Period index of each date in the season of ``year`` (-1 outside it or undated)."""
        b = self.bounds(year)
        out = np.full(len(dates), -1, np.int64)
        for i, d in enumerate(dates):
            if d is None:
                continue
            day = dt.date.fromisoformat(d) if isinstance(d, str) else d
            for p, (lo, hi) in enumerate(b):
                if lo <= day < hi:
                    out[i] = p
                    break
        return out

    def anchor(self, dates: Sequence[dt.date | str | None], prefer: int | None = None) -> int:
        """The year whose season holds the most observed periods, then the most acquisitions, then the latest;
        ``prefer`` (the training year) wins while it holds as many observed periods as any other year."""
        days = [dt.date.fromisoformat(d) if isinstance(d, str) else d for d in dates if d is not None]
        if not days:
            raise EoSslError("no_dates", "The season calendar needs dated acquisitions; these have no dates.",
                             "Name the files with their YYYYMMDD date or set an ACQUISITION_DATE tag, or use "
                             "--period dates.")
        best: tuple[int, int, int] | None = None
        for year in range(min(days).year - 1, max(days).year + 1):
            p = self.assign(days, year)
            key = (len(set(p[p >= 0].tolist())), int((p >= 0).sum()), year)
            if best is None or key > best:
                best = key
        assert best is not None
        if prefer is not None:
            p = self.assign(days, prefer)
            if len(set(p[p >= 0].tolist())) >= best[0]:
                return prefer
        return best[2]

    def check_covered(self, sensor: str, dates: Sequence[dt.date | str | None], year: int,
                      required: Sequence[bool] | None = None) -> np.ndarray:
        """:meth:`assign`, refusing a ``required`` period (default: every one; a model needs those its training data
        observed) without any acquisition (``period_not_covered``, naming the periods)."""
        p = self.assign(dates, year)
        need = list(required) if required is not None else [True] * self.periods
        empty = [lab for i, lab in enumerate(self.labels(year)) if need[i] and not (p == i).any()]
        if empty:
            raise EoSslError("period_not_covered", f"The model reads {sensor.upper()} in every period of its season "
                             f"calendar ({self.describe()}); the inputs hold no {sensor.upper()} acquisition in "
                             f"{', '.join(empty[:8])}{' ...' if len(empty) > 8 else ''} (season of {year}).",
                             "Add the scenes of those periods (a wider --poi), or train on a shorter season "
                             "(finetune --season) or a coarser --period.")
        return p

    def covered(self, dates: Sequence[dt.date | str | None], year: int) -> list[bool]:
        """Which periods hold at least one of ``dates`` in the season of ``year``."""
        p = self.assign(dates, year)
        return [bool((p == i).any()) for i in range(self.periods)]

    def describe(self) -> str:
        what = "months" if self.step == "month" else f"periods of {self.step[:-1]} days"
        return f"{self.periods} {what} from {self.start}"

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "step": self.step, "periods": self.periods}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calendar:
        return cls(str(d["start"]), str(d["step"]), int(d["periods"]))


def _as_day(text: str, what: str) -> tuple[int | None, int, int]:
    """``YYYY-MM-DD`` or ``MM-DD`` -> (year or None, month, day)."""
    parts = text.strip().split("-")
    try:
        if len(parts) == 3:
            d = dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
            return d.year, d.month, d.day
        if len(parts) == 2:
            d = dt.date(2001, int(parts[0]), int(parts[1]))
            return None, d.month, d.day
    except ValueError:
        pass
    raise EoSslError("bad_argument", f"--season {what} {text!r} is not a date.",
                     "Use MM-DD/MM-DD (e.g. 03-01/10-31) or YYYY-MM-DD/YYYY-MM-DD.")


def season_calendar(season: str | None, step: str, dates: Sequence[dt.date | str | None],
                    poi: Sequence[str] | None = None) -> tuple[Calendar, int]:
    """The calendar of a training store and its anchor year.

    ``season`` (``START/END``, ``MM-DD`` or ISO dates; the end inclusive) when given; else the store's POI when it
    spans at most a year; else the 12 months (from a month start) holding the most acquisitions, the latest of
    equal ones. ``dates`` are the store's valid acquisitions (Sentinel-2's when there are any).
    """
    step = parse_period(step)
    if step == PERIOD_DATES:
        raise ValueError("season_calendar is for calendar steps")
    days = sorted(dt.date.fromisoformat(d) if isinstance(d, str) else d for d in dates if d is not None)
    if not days:
        raise EoSslError("no_dates", "The store's acquisitions have no dates: no season calendar.",
                         "Use --period dates, or prepare files whose names or tags carry the date.")
    if season:
        if "/" not in season:
            raise EoSslError("bad_argument", f"--season {season!r} is not START/END.", "Use e.g. 03-01/10-31.")
        a, b = season.split("/", 1)
        ya, ma, da = _as_day(a, "start")
        yb, mb, db = _as_day(b, "end")
        y0 = ya if ya is not None else None
        start = dt.date(y0 or 2001, ma, da)
        end = dt.date(yb if yb is not None else (start.year if (mb, db) >= (ma, da) else start.year + 1), mb, db)
        if ya is not None and yb is not None and end < start:
            raise EoSslError("bad_argument", f"--season {season!r} ends before it starts.", "Use START/END.")
    elif poi and (dt.date.fromisoformat(poi[1]) - dt.date.fromisoformat(poi[0])).days <= 366:
        start, end = dt.date.fromisoformat(poi[0]), dt.date.fromisoformat(poi[1])
        y0 = start.year
    else:  # the 12 months with the most acquisitions
        best: tuple[int, dt.date] | None = None
        m = dt.date(days[0].year, days[0].month, 1)
        while m <= days[-1]:
            n = sum(1 for d in days if m <= d < _add_months(m, 12))
            if best is None or n >= best[0]:
                best = (n, m)
            m = _add_months(m, 1)
        assert best is not None
        start, end = best[1], _add_months(best[1], 12) - dt.timedelta(days=1)
        y0 = start.year
    span_end = end + dt.timedelta(days=1)
    if step == "month":
        n = (span_end.year - start.year) * 12 + span_end.month - start.month + (1 if span_end.day > start.day else 0)
    else:
        k = int(step[:-1])
        n = -(-(span_end - start).days // k)
    cal = Calendar(f"{start.month:02d}-{start.day:02d}", step, max(1, n))
    year = y0 if y0 is not None else cal.anchor(days)
    # periods at either end without any acquisition (a POI wider than the data) are left out
    p = cal.assign(days, year)
    seen = sorted(set(p[p >= 0].tolist()))
    if not seen:
        raise EoSslError("period_not_covered", f"No acquisition of the store falls in the season {cal.describe()} "
                         f"of {year}.", "Give a --season the store's dates cover.")
    if seen[0] > 0 or seen[-1] < cal.periods - 1:
        first = cal.bounds(year)[seen[0]][0]
        cal = Calendar(f"{first.month:02d}-{first.day:02d}", step, seen[-1] - seen[0] + 1)
        year = first.year
    return cal, year


def composite_periods(values: np.ndarray, period_of: np.ndarray, n_periods: int) -> np.ndarray:
    """(..., T, C) values with NaN at invalid observations -> (..., P, C): each period's per-band median of its valid
    observations (NaN where it has none). ``period_of`` (T,) gives each observation's period (-1: none)."""
    out = np.full((*values.shape[:-2], n_periods, values.shape[-1]), np.nan, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN periods of a pixel stay NaN
        for p in range(n_periods):
            idx = np.nonzero(period_of == p)[0]
            if len(idx) == 1:
                out[..., p, :] = values[..., idx[0], :]
            elif len(idx):
                out[..., p, :] = np.nanmedian(values[..., idx, :], axis=-2)
    return out
