"""Presto: eo-ssl's own implementation (:mod:`backend.models.presto`) against the published reference, strict loading,
``import-weights --encoder presto``, masking.

Real weights and data of ``../shared/data``: Presto's published state dict
(``published_encoders/presto/default_model.pt``, nasaharvest/presto @ 13173d0, MIT) and the WorldCereal Flanders
2018 patch (``worldcereal_flanders_2018/``).

**How the reference figures were produced** (once, by hand, in a scratch folder outside the repository):

- Code: nasaharvest/presto at commit 13173d028f035abcbcc3b13829314323a5c15d02 (``git archive`` of ``presto/`` and
  ``single_file_presto.py``), run with this project's torch (2.14.1, CPU, float32). Its data-pipeline modules import
  Earth Engine, Google Cloud Storage and openmapflow at import time; those modules were replaced by empty stubs
  (never called). The model (``presto.Presto.construct()`` + ``load_state_dict(torch.load(default_model.pt))``),
  the band layout and normalisation (``S1_S2_ERA5_SRTM.normalize``) and ``construct_single_presto_input`` ran as
  published. Figures: ``model.encoder(x, dynamic_world, latlons, mask, month, eval_task=True)``; the single-file
  model (``single_file_presto.Presto``, one pixel at a time) gave the same to 1.2e-6.
- Pixels (row, col) of the 64 x 64 grid: (38, 43) Maize, (34, 32) Permanent grass, (16, 40) Other leguminous
  crops, (61, 2) Potatoes (per class of ``labels.tif`` band CT: the pixel nearest the class's centroid).
- Inputs: 12 months, November 2017 .. October 2018 (months 10, 11, 0, 1, ..., 9): per month and band the median
  (``np.nanmedian``, float32) of the valid observations of the ``s2/S2_YYYYMM*.tif`` (valid: all 10 bands non-zero)
  and ``s1/S1_YYYYMM*.tif`` (valid: VV and VH finite) of that month; every month had 1 to 3 of each. S2 bands passed
  as ``s2_bands=["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12"]``, S1 as ``["VV", "VH"]``, raw
  (reflectance x 10000, dB): ``construct_single_presto_input`` normalises them and masks ERA5 and SRTM; Dynamic
  World 9 (missing). A missing month (NaN) was given as 0 with its channels masked at that step (``mask = 1``),
  NDVI masked where B4 or B8 was. ``latlons``: the pixel centres in WGS84 (pyproj from EPSG:32631).
- Case A: S1 + S2. Case B: S2 only (no ``s1``: masked by ``construct_single_presto_input``), and December 2017
  (time step 1) missing at pixels 1 and 3.
- Recorded: the first 6 of the 128 values of each pixel's embedding and its L2 norm, to 5 decimals.
"""

from __future__ import annotations

import glob
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.errors import EoSslError
from backend.models import presto
from backend.models.package import save_package, sha256_of
from tests.backend.model_helpers import error_of, run_command

PIXELS = [(38, 43), (34, 32), (16, 40), (61, 2)]
MONTHS = [(2017, 11), (2017, 12)] + [(2018, m) for m in range(1, 11)]
S2_FILE_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")

# nasaharvest/presto @ 13173d0 on the inputs above (see the module docstring)
REFERENCE = {
    "A": ([[-0.5371, -4.10745, 2.01133, 0.42483, -1.99024, 1.12038],
           [-1.26724, -5.04894, 1.45242, 0.98994, -2.4274, 1.81427],
           [-1.26757, -5.01999, 1.58933, 1.12846, -2.44761, 1.36599],
           [-1.22126, -4.75121, 1.7613, 0.9632, -2.36646, 1.65521]],
          [12.96095, 13.49469, 13.40620, 13.43873]),
    "B": ([[-0.38288, -4.51567, 1.92686, 0.49545, -1.98095, 1.09692],
           [-1.00869, -5.20443, 1.3892, 1.01351, -2.36675, 1.96083],
           [-1.10444, -5.21558, 1.50337, 1.17579, -2.40787, 1.35611],
           [-0.92162, -4.92767, 1.67843, 1.02459, -2.44475, 1.8889]],
          [13.02318, 13.51080, 13.38863, 13.43011]),
}
# the pixel centres in WGS84 (pyproj, recorded with the figures)
LATLON = [[50.81537926, 3.02547989], [50.8157393, 3.02391864], [50.81735776, 3.02505511], [50.81331204, 3.01965911]]


@pytest.fixture(scope="module")
def weights_file(shared_data: Path) -> Path:
    path = shared_data / "published_encoders" / "presto" / "default_model.pt"
    if not path.is_file():
        pytest.skip(f"{path} not found: Presto's published weights live in ../shared/data")
    return path


@pytest.fixture(scope="module")
def model(weights_file: Path) -> presto.Presto:
    return presto.read_presto_file(weights_file)[0]


@pytest.fixture(scope="module")
def encoder(model: presto.Presto) -> presto.PrestoEncoder:
    return model.encoder


@pytest.fixture(scope="module")
def flanders(shared_data: Path) -> dict[str, torch.Tensor]:
    """The monthly medians of the four pixels (as the reference figures were made), lat/lon and months."""
    import rasterio

    root = shared_data / "worldcereal_flanders_2018"
    if not root.is_dir():
        pytest.skip(f"{root} not found: the real Flanders patch the reference figures were made on lives in "
                    "../shared/data")
    rows = np.array([r for r, _ in PIXELS])
    cols = np.array([c for _, c in PIXELS])

    def monthly(sensor: str, count: int) -> np.ndarray:
        out = np.full((len(PIXELS), len(MONTHS), count), np.nan, np.float32)
        for t, (y, m) in enumerate(MONTHS):
            obs = []
            for f in sorted(glob.glob(str(root / sensor / f"{sensor.upper()}_{y}{m:02d}*.tif"))):
                with rasterio.open(f) as ds:
                    a = ds.read().astype(np.float32)[:, rows, cols].T
                valid = (a != 0).all(-1) if sensor == "s2" else np.isfinite(a).all(-1)
                a[~valid] = np.nan
                obs.append(a)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[:, t] = np.nanmedian(np.stack(obs), axis=0)
        return out

    with rasterio.open(root / "labels.tif") as ds:
        crs, transform = ds.crs.to_wkt(), ds.transform
    return {"s2": torch.from_numpy(monthly("s2", 10)), "s1": torch.from_numpy(monthly("s1", 2)),
            "months": torch.tensor([m - 1 for _, m in MONTHS]),
            "latlon": presto.pixel_latlon(crs, transform, rows, cols)}


def values_of(data: dict[str, torch.Tensor], s1: bool = True) -> dict[str, torch.Tensor]:
    out = {b: data["s2"][:, :, i].clone() for i, b in enumerate(S2_FILE_BANDS)}
    if s1:
        out.update(VV=data["s1"][:, :, 0].clone(), VH=data["s1"][:, :, 1].clone())
    return out


def case_b(data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    values = values_of(data, s1=False)
    for v in values.values():
        v[[1, 3], 1] = float("nan")
    return values


def test_pixel_latlon(flanders: dict[str, torch.Tensor]) -> None:
    """The lat/lon token's input: the grid's pixel centres in WGS84 (Flanders, about 50.8 N 3.0 E)."""
    assert flanders["latlon"].dtype == torch.float32
    np.testing.assert_allclose(flanders["latlon"].numpy(), LATLON, atol=1e-5)


@pytest.mark.parametrize("case", ["A", "B"])
def test_matches_the_published_reference(encoder: presto.PrestoEncoder, flanders: dict[str, torch.Tensor],
                                         case: str) -> None:
    """Our implementation on the reference's inputs gives the reference's embeddings (atol 1e-4)."""
    values = values_of(flanders) if case == "A" else case_b(flanders)
    emb = encoder.embed(values, flanders["months"], flanders["latlon"])
    assert emb.shape == (4, 128) and emb.dtype == torch.float32
    first6, norms = REFERENCE[case]
    np.testing.assert_allclose(emb[:, :6].numpy(), first6, atol=1e-4)
    np.testing.assert_allclose(emb.norm(dim=1).numpy(), norms, atol=1e-4)


def test_strict_load(weights_file: Path, model: presto.Presto) -> None:
    """Every tensor of the file is used, none is missing, each equal to the module's; the fixed tables of the file
    are the sinusoids our module computes."""
    file = torch.load(weights_file, map_location="cpu", weights_only=True)
    own = model.state_dict()
    assert set(file) == set(own) and len(file) == 102
    for k, v in file.items():
        assert torch.equal(own[k], v), k
    _, info = presto.read_presto_file(weights_file)
    assert (info["tensors"], info["encoder_tensors"], info["decoder_tensors"]) == (102, 50, 52)
    assert info["encoder_parameters"] == sum(p.numel() for p in model.encoder.state_dict().values()) == 404_160
    torch.testing.assert_close(file["encoder.pos_embed"][0], presto.sinusoid_table(24, 64), atol=1e-6, rtol=0)
    torch.testing.assert_close(file["encoder.month_embed.weight"], presto.month_table(32), atol=1e-6, rtol=0)
    torch.testing.assert_close(file["decoder.pos_embed"][0], presto.sinusoid_table(24, 48), atol=1e-6, rtol=0)
    torch.testing.assert_close(file["decoder.month_embed.weight"], presto.month_table(48), atol=1e-6, rtol=0)


def test_foreign_and_damaged_files_refused(weights_file: Path, tmp_path: Path) -> None:
    """A truncated file, another network's state dict, a Presto file with a tensor less or of another shape, and a
    pickle that would call a function are refused with their codes."""
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(weights_file.read_bytes()[: weights_file.stat().st_size // 2])
    foreign = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, foreign)
    state = torch.load(weights_file, map_location="cpu", weights_only=True)
    lacking = tmp_path / "lacking.pt"
    torch.save({k: v for k, v in state.items() if k != "decoder.mask_token"}, lacking)
    extra = tmp_path / "extra.pt"
    torch.save({**state, "head.weight": torch.zeros(2, 128)}, extra)
    reshaped = tmp_path / "reshaped.pt"
    torch.save({**state, "encoder.latlon_embed.weight": torch.zeros(128, 2)}, reshaped)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"encoder.norm.weight": torch.ones(128), "run": _Calls()}, unsafe)
    expect = {truncated: ("corrupt_weights", ""), foreign: ("weights_mismatch", "conv1.weight"),
              lacking: ("weights_mismatch", "decoder.mask_token"), extra: ("weights_mismatch", "head.weight"),
              reshaped: ("weights_mismatch", "encoder.latlon_embed.weight (128, 2) (needs (128, 3))"),
              unsafe: ("unsafe_weights", "")}
    for path, (code, text) in expect.items():
        with pytest.raises(EoSslError) as err:
            presto.read_presto_file(path)
        assert err.value.code == code, (path.name, err.value)
        assert text in err.value.message, (path.name, err.value.message)


class _Calls:
    """Unpickling this calls ``print``: ``torch.load(weights_only=True)`` refuses it."""

    def __reduce__(self) -> tuple:
        return (print, ("unpickled",))


def test_import_weights_writes_a_package(weights_file: Path, encoder: presto.PrestoEncoder,
                                         flanders: dict[str, torch.Tensor], tmp_path: Path,
                                         backend_python: str, repo_root: Path) -> None:
    """``python -m backend import-weights FILE --encoder presto --out PKG --events`` writes a package of the encoder
    (family presto, its bands, the file's SHA-256 in the provenance chain, the decoder dropped), and
    ``load_presto_package`` rebuilds it with identical embeddings."""
    out = tmp_path / "presto-package"
    proc = subprocess.run([backend_python, "-m", "backend", "import-weights", str(weights_file), "--encoder",
                           "presto", "--out", str(out), "--events"], cwd=repo_root, capture_output=True, text=True,
                          timeout=300)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 0, (proc.stderr[-2000:], events[-2:])
    assert events[-1]["event"] == "done" and events[-1]["ok"]
    summary = events[-1]["summary"]
    sha = sha256_of(weights_file)
    assert summary["sha256"] == sha == presto.PUBLISHED_SHA256 and summary["recognised"] == "presto"
    meta = json.loads((out / "model.json").read_text())
    assert meta["architecture"]["family"] == "presto" and meta["method"] == "imported"
    assert [b for _, b in meta["input"]["channels"]] == list(presto.INPUT_BANDS)
    assert meta["normalization"]["s1"]["VV"] == {"mean": -25.0, "std": 25.0}
    assert meta["normalization"]["s2"]["B8A"] == {"mean": 0.0, "std": 10000.0}
    step = meta["provenance"]["chain"][0]
    assert step["step"] == "import" and step["sha256"] == sha and step["decoder"] == "dropped"
    imported = meta["provenance"]["imported"]
    assert imported["decoder_dropped"] and imported["unused_tensors"] == 0 and imported["tensors"] == 102
    from safetensors.torch import load_file

    stored = load_file(str(out / "weights.safetensors"))
    assert len(stored) == 50 and all(k.startswith("encoder.") for k in stored)

    rebuilt = presto.load_presto_package(out)
    months, latlon = flanders["months"], flanders["latlon"]
    for values in (values_of(flanders), case_b(flanders)):
        assert torch.equal(rebuilt.embed(values, months, latlon), encoder.embed(values, months, latlon))


def test_package_checks(tmp_path: Path) -> None:
    """``load_presto_package`` takes Presto packages only, strictly."""
    timm_pkg = tmp_path / "timm"
    save_package(timm_pkg, {"encoder.conv1.weight": torch.zeros(1)},
                 {"task": "pretrain", "architecture": {"family": "timm", "encoder": "resnet18"}})
    with pytest.raises(EoSslError) as err:
        presto.load_presto_package(timm_pkg)
    assert err.value.code == "unsupported_model"
    enc = presto.PrestoEncoder()
    state = {f"encoder.{k}": v for k, v in enc.state_dict().items() if k != "norm.bias"}
    lacking = tmp_path / "lacking"
    save_package(lacking, state, {"task": "pretrain", "architecture": presto.architecture_of(enc)})
    with pytest.raises(EoSslError) as err:
        presto.load_presto_package(lacking)
    assert err.value.code == "weights_mismatch" and "norm.bias" in err.value.message


def test_import_weights_refusals(weights_file: Path, tmp_path: Path) -> None:
    """The Presto file under another --encoder, options that do not apply to Presto, a foreign file under
    --encoder presto: refused with their codes, nothing written."""
    foreign = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, foreign)
    for args, code in (([weights_file, "--encoder", "resnet18"], "init_mismatch"),
                       ([weights_file, "--encoder", "presto", "--bands", "B02,B03"], "bad_argument"),
                       ([foreign, "--encoder", "presto"], "weights_mismatch")):
        out = tmp_path / "pkg"
        rc, events = run_command("import-weights", [*args, "--out", out])
        assert rc == 2 and error_of(events)["code"] == code, events[-2:]
        assert not out.exists()


def test_pretrain_refuses_a_presto_init(tmp_path: Path) -> None:
    """A Presto package cannot initialise an image encoder: ``init_mismatch`` before any data is read."""
    enc = presto.PrestoEncoder()
    pkg = tmp_path / "presto"
    save_package(pkg, {f"encoder.{k}": v for k, v in enc.state_dict().items()},
                 {"task": "pretrain", "method": "imported", "architecture": presto.architecture_of(enc),
                  "input": {"channels": [["s2", "B02"]], "channel_mode": "presto"}})
    rc, events = run_command("pretrain", ["--data", tmp_path / "no-store", "--init", pkg, "--method", "byol",
                                          "--out", tmp_path / "out"])
    assert rc == 2 and error_of(events)["code"] == "init_mismatch", events[-2:]


def test_masking_is_honoured(encoder: presto.PrestoEncoder, flanders: dict[str, torch.Tensor]) -> None:
    """A masked group changes the embedding; a group is masked as a whole (one band missing = all its bands);
    an absent band = a band missing at every step; a pixel's masking leaves the other pixels' embeddings alone."""
    months, latlon = flanders["months"], flanders["latlon"]
    full = values_of(flanders)
    base = encoder.embed(full, months, latlon)

    no_red_edge = {b: v for b, v in full.items() if b not in ("B05", "B06", "B07")}
    changed = encoder.embed(no_red_edge, months, latlon)
    assert (changed - base).abs().amax(1).min() > 1e-3

    one_band_nan = {b: v.clone() for b, v in full.items()}
    one_band_nan["B06"][:] = float("nan")  # B06 missing everywhere: its group (B05, B06, B07) is masked
    torch.testing.assert_close(encoder.embed(one_band_nan, months, latlon), changed, atol=1e-5, rtol=0)

    step = {b: v.clone() for b, v in full.items()}
    step["B11"][0, 4] = float("nan")  # SWIR of March at pixel 0 only
    masked_step = encoder.embed(step, months, latlon)
    assert (masked_step[0] - base[0]).abs().max() > 1e-4
    torch.testing.assert_close(masked_step[1:], base[1:], atol=1e-5, rtol=0)

    no_s1 = encoder.embed({b: v for b, v in full.items() if b not in ("VV", "VH")}, months, latlon)
    assert (no_s1 - base).abs().amax(1).min() > 1e-3
    ignored = encoder.embed({**full, "B01": torch.zeros(4, 12), "B09": torch.zeros(4, 12)}, months, latlon)
    assert torch.equal(ignored, base)
    other_months = encoder.embed(full, (months + 6) % 12, latlon)
    assert (other_months - base).abs().amax(1).min() > 1e-3


def test_deterministic_and_batched(encoder: presto.PrestoEncoder, flanders: dict[str, torch.Tensor],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The same inputs give the same features; chunks and batch composition change nothing beyond float noise;
    float32 under autocast; bad inputs are refused."""
    months, latlon = flanders["months"], flanders["latlon"]
    values = case_b(flanders)
    first = encoder.embed(values, months, latlon)
    assert torch.equal(first, encoder.embed(values, months, latlon))
    monkeypatch.setattr(presto.PrestoEncoder, "chunk_size", 3)
    torch.testing.assert_close(encoder.embed(values, months, latlon), first, atol=1e-5, rtol=0)
    alone = encoder.embed({b: v[2:3] for b, v in values.items()}, months, latlon[2:3])
    torch.testing.assert_close(alone, first[2:3], atol=1e-5, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = encoder.embed(values, months, latlon)
    assert under.dtype == torch.float32
    torch.testing.assert_close(under, first, atol=1e-5, rtol=0)

    n = 2
    good = {"B02": torch.zeros(n, 3)}
    for bad, text in (({"B1": torch.zeros(n, 3)}, "not Presto input bands"),
                      ({"B02": torch.zeros(n, 4)}, "must be (N, T)")):
        with pytest.raises(ValueError, match=text.replace("(", r"\(").replace(")", r"\)")):
            encoder.embed(bad, torch.arange(3), torch.zeros(n, 2))
    with pytest.raises(ValueError, match="calendar months"):
        encoder.embed(good, torch.tensor([0, 5, 12]), torch.zeros(n, 2))
    with pytest.raises(ValueError, match="1 to 24 time steps"):
        encoder.embed({"B02": torch.zeros(n, 25)}, torch.arange(25) % 12, torch.zeros(n, 2))

