"""The analysis grid: one CRS, transform and shape for the whole cube, and windows over it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import shapely
from affine import Affine
from pyproj import CRS
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from shapely.geometry.base import BaseGeometry

from backend.data.aoi import AOI, reproject_geometry
from backend.data.scenes import Scene
from backend.errors import EoSslError

#: A grid larger than this many pixels is refused (a full S2 tile is 120 M pixels).
MAX_PIXELS = 2_000_000_000


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid. ``crs`` is a pyproj CRS; ``transform`` maps (col, row) to (x, y)."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> float:
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    def window_transform(self, window: Window) -> Affine:
        return window_transform(window, self.transform)

    def windows(self, size: int = 512) -> Iterator[Window]:
        """Row-major blocks of ``size`` x ``size`` (smaller at the right and bottom edges)."""
        for row in range(0, self.height, size):
            for col in range(0, self.width, size):
                yield Window(col, row, min(size, self.width - col), min(size, self.height - row))

    def to_dict(self) -> dict:
        return {"crs": self.crs.to_wkt(), "epsg": self.crs.to_epsg(), "transform": list(self.transform)[:6],
                "width": self.width, "height": self.height, "resolution": self.resolution}

    @classmethod
    def from_dict(cls, d: dict) -> Grid:
        return cls(CRS.from_user_input(d["crs"]), Affine(*d["transform"]), int(d["width"]), int(d["height"]))

    def rasterio_crs(self):  # noqa: ANN201 - rasterio.crs.CRS
        from rasterio.crs import CRS as RioCRS

        return RioCRS.from_wkt(self.crs.to_wkt())


def utm_crs_for(geom: BaseGeometry, crs: CRS) -> CRS:
    """The WGS 84 / UTM zone CRS holding the centre of ``geom``."""
    centre = reproject_geometry(geom, crs, CRS.from_epsg(4326)).centroid
    infos = query_utm_crs_info(datum_name="WGS 84",
                               area_of_interest=AreaOfInterest(centre.x, centre.y, centre.x, centre.y))
    return CRS.from_epsg(int(infos[0].code))


def footprint(scene: Scene, crs: CRS) -> BaseGeometry:
    return reproject_geometry(shapely.box(*scene.bounds), CRS.from_user_input(scene.crs.to_wkt()), crs)


def check_metric(crs: CRS, what: str) -> None:
    units = {ax.unit_name for ax in crs.axis_info}
    if not crs.is_projected or not units <= {"metre", "meter", "m"}:
        raise EoSslError("crs_not_metric",
                         f"The {what} CRS {crs.name} has units {', '.join(sorted(units))}, not metres.",
                         "Pick a projected CRS in metres (e.g. the UTM zone, EPSG:326NN) with --crs, or leave it "
                         "out to use the Sentinel-2 UTM grid.")


def choose_grid(s2: list[Scene], aoi: AOI | None, crs: str | None = None, resolution: float = 10.0,
                others: list[Scene] | None = None) -> tuple[Grid, BaseGeometry]:
    """The analysis grid and the AOI polygon in its CRS.

    Default CRS: the first Sentinel-2 scene's, or the UTM zone of the AOI (or scene) if that is geographic.
    The extent is the AOI (or, without one, the union of the S2 footprints), clipped to the S2 coverage, and
    snapped to the S2 pixel grid when the CRS is the S2 CRS, so 10 m bands are copied, not resampled.
    """
    if resolution <= 0:
        raise EoSslError("bad_resolution", f"--resolution {resolution} is not positive.", "Use e.g. --resolution 10.")
    first_crs = CRS.from_user_input(s2[0].crs.to_wkt())
    if crs:
        try:
            target = CRS.from_user_input(crs)
        except Exception as exc:  # noqa: BLE001
            raise EoSslError("bad_crs", f"--crs {crs!r} is not a CRS.", "Use an EPSG code, e.g. EPSG:32633.") from exc
        check_metric(target, "requested grid")
    elif first_crs.is_projected:
        target = first_crs
        check_metric(target, "Sentinel-2")
    else:
        ref = aoi.geometry if aoi is not None else shapely.box(*s2[0].bounds)
        target = utm_crs_for(ref, aoi.crs if aoi is not None else first_crs)

    coverage = shapely.union_all([footprint(s, target) for s in s2])
    if aoi is not None:
        aoi_geom = aoi.to_crs(target).geometry
        if not aoi_geom.intersects(coverage) or aoi_geom.intersection(coverage).area == 0:
            raise EoSslError(
                "aoi_outside_rasters",
                f"The AOI ({aoi.source}) does not overlap the Sentinel-2 rasters.",
                "Check that AOI and rasters cover the same place (and that both CRSs are right).")
        region = aoi_geom.intersection(coverage)
    else:
        aoi_geom = coverage
        region = coverage
        footprint_area = sum(footprint(s, target).area for s in s2)
        minx, miny, maxx, maxy = coverage.bounds
        if (maxx - minx) * (maxy - miny) > 10 * max(footprint_area, 1.0) and len(s2) > 1:
            raise EoSslError(
                "scenes_disjoint",
                f"The {len(s2)} Sentinel-2 scenes lie far apart: one grid over all of them would be mostly empty.",
                "Prepare each place separately, or give --aoi / --bbox to pick one.")
    if others:
        s1_cover = shapely.union_all([footprint(s, target) for s in others])
        if not s1_cover.intersects(region) or s1_cover.intersection(region).area == 0:
            raise EoSslError("no_s1_s2_overlap", "The Sentinel-1 rasters do not overlap the Sentinel-2 rasters "
                             "inside the AOI.", "Give Sentinel-1 scenes of the same place.")

    minx, miny, maxx, maxy = region.bounds
    # anchor on the first S2 scene's pixel corner when the grid is in its CRS: 10 m bands are then copied
    ox, oy = (s2[0].bounds[0], s2[0].bounds[3]) if target == first_crs else (0.0, 0.0)
    col0 = math.floor((minx - ox) / resolution + 1e-9)
    col1 = math.ceil((maxx - ox) / resolution - 1e-9)
    row0 = math.floor((oy - maxy) / resolution + 1e-9)
    row1 = math.ceil((oy - miny) / resolution - 1e-9)
    width, height = max(col1 - col0, 1), max(row1 - row0, 1)
    if width * height > MAX_PIXELS:
        raise EoSslError("grid_too_large", f"The grid would be {width} x {height} pixels.",
                         "Give a smaller AOI or a coarser --resolution.")
    transform = Affine(resolution, 0.0, ox + col0 * resolution, 0.0, -resolution, oy - row0 * resolution)
    return Grid(target, transform, width, height), aoi_geom
