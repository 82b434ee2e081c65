"""Band names: canonical spellings, aliases and native resolutions of Sentinel-2 and Sentinel-1."""

from __future__ import annotations

import re

#: Sentinel-2 MSI bands in ESA order with their native resolution in metres.
S2_BANDS: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}
#: The 13-band order of L1C stacks (ESA order, B8A after B08), e.g. Sen1Floods11's S2Hand.
S2_L1C_ORDER: tuple[str, ...] = tuple(S2_BANDS)
#: The band order of the EuroSAT-MS GeoTIFFs, which name no band: B8A comes *last*, not after B08 (torchgeo's
#: EuroSAT has the same order). The spectra show it: over vegetation the 9th band is dark (945 nm water vapour,
#: about a third of the NIR), the 10th is near zero (1375 nm cirrus) and the 13th is the NIR plateau (>= B08).
EUROSAT_MS_ORDER: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11",
                                     "B12", "B8A")
#: The 12-band order of L2A stacks (no cirrus band B10).
S2_L2A_ORDER: tuple[str, ...] = tuple(b for b in S2_BANDS if b != "B10")
#: The 10 bands at 10 and 20 m, the usual analysis-ready set.
S2_10_20M: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
#: Red, green, blue.
S2_RGB: tuple[str, ...] = ("B04", "B03", "B02")

S1_BANDS: tuple[str, ...] = ("VV", "VH")

#: The band at the end of a per-band file's name, after ``_``, ``-`` or ``.``: ``T33UUU_..._B8A``,
#: ``..._B02_10m`` (Sentinel-2, any spelling ``canonical_s2`` reads), ``..._VH`` (Sentinel-1).
FILE_BAND: dict[str, re.Pattern[str]] = {
    "s2": re.compile(r"(?:^|[_\-.])(B\d{1,2}A?)(?:_\d{2}m)?$", re.IGNORECASE),
    "s1": re.compile(rf"(?:^|[_\-.])({'|'.join(S1_BANDS)})$", re.IGNORECASE),
}

_S2_RE = re.compile(r"^(?:S2[_-]?)?B(?:AND)?[_-]?0*(\d{1,2})(A?)$", re.IGNORECASE)


def canonical_s2(name: str) -> str | None:
    """``'B2'``, ``'b02'``, ``'B8a'``, ``'band_8A'`` -> ``'B02'``, ``'B02'``, ``'B8A'``, ``'B8A'``; None if unknown."""
    m = _S2_RE.match(name.strip())
    if not m:
        return None
    number, a = int(m.group(1)), m.group(2).upper()
    key = f"B{number}A" if a else f"B{number:02d}"
    return key if key in S2_BANDS else None


def canonical_s1(name: str) -> str | None:
    """``'vv'``, ``'Sigma0_VV'``, ``'VV_db'`` -> ``'VV'``; None if not a VV/VH name."""
    tokens = re.split(r"[^A-Za-z0-9]+", name.strip().upper())
    found = [t for t in tokens if t in S1_BANDS]
    return found[0] if len(found) == 1 else None


def canonical(name: str, sensor: str) -> str | None:
    return canonical_s2(name) if sensor == "s2" else canonical_s1(name)


def band_token_in_filename(stem: str, sensor: str) -> str | None:
    """The band named by a per-band file name: ``T33UUU_..._B8A`` -> ``B8A``, ``..._VH`` -> ``VH``."""
    m = FILE_BAND[sensor].search(stem)
    if not m:
        return None
    return canonical_s2(m.group(1)) if sensor == "s2" else m.group(1).upper()


def parse_band_list(text: str, sensor: str) -> list[str]:
    """``'B02,B03,B04'`` -> canonical names; raises ValueError naming the first unknown one."""
    names = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    out = []
    for n in names:
        c = canonical(n, sensor)
        if c is None:
            raise ValueError(n)
        out.append(c)
    return out
