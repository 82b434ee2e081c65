"""The toolbar dialog's step planning, apart from its widgets (no Qt widget here; testable headless).

:class:`Choices` is what the dialog's widgets say; :func:`plan_steps` turns it into the chain of algorithm runs the
dialog starts (:class:`.jobs.Step`), or raises ValueError with a message for the user. The default for a user who
picked Sentinel-2 layers and a parcels layer is the few-label map (:func:`few_label_steps`): prepare -> pixel
classifier (quick: a first map in seconds) -> predict -> compare report, with pre-training one tick away. The
compare report runs last, so the first map comes first. :func:`model_problem` says why a folder is not a model
package to predict with, :func:`guess_class_field` picks the class field of a parcels layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingFeatureSourceDefinition, QgsProcessingOutputLayerDefinition

from .i18n import tr
from .jobs import Step

#: The steps ticked when a parcels layer is chosen (the few-label map); pre-training stays one tick away.
FEW_LABEL_STEPS = {"pretrain": False, "finetune": True, "evaluate": True, "predict": True, "label": False}

#: Field names that are never a class: feature ids and keys.
_ID_FIELD = re.compile(r"^(fid|ogc_fid|gid|oid|objectid|id|uuid|osm_id|.*_id|id_.*)$", re.IGNORECASE)
#: Field names that usually hold the class (OSM's fclass, WorldCereal's ct_name, LPIS crop names, ...).
_CLASS_NAME = re.compile(r"^(f?class(_?name)?|ct_name|label|landcover|land_cover|lc|crop(_?type|_?name)?|"
                         r"category|type|gewas|gewasgroep|culture|cult|kultur)$", re.IGNORECASE)
#: More distinct values than this: not a class field.
MAX_CLASSES = 100


@dataclass
class FieldInfo:
    """A field of the parcels layer, as :func:`guess_class_field` sees it."""

    name: str
    is_text: bool
    distinct: int  # distinct non-null values (may be capped just above MAX_CLASSES)


def guess_class_field(fields: list[FieldInfo], n_features: int) -> str | None:
    """The field whose values look like classes: few distinct values (2..MAX_CLASSES, fewer than the features),
    text before numbers, a usual class name first; never an id (``fid``, ``osm_id``...). None when none fits."""
    def fits(f: FieldInfo) -> bool:
        if _ID_FIELD.match(f.name) or not 2 <= f.distinct <= MAX_CLASSES:
            return False
        return n_features < 3 or f.distinct < n_features

    ranked = sorted((f for f in fields if fits(f)),
                    key=lambda f: (not _CLASS_NAME.match(f.name), not f.is_text, f.distinct))
    return ranked[0].name if ranked else None


def model_problem(text: str) -> str | None:
    """Why ``text`` (the dialog's '...or predict with this model') is no model package to predict with, or None
    when it is one. An empty text is no problem (no model chosen)."""
    text = text.strip()
    if not text:
        return None
    path = Path(text).expanduser()
    pick = tr("Pick the folder a Fine-tune run wrote (it holds model.json and weights.safetensors, e.g. "
              "<output folder>/finetuned), or tick 'Fine-tune' to train one in this run.")
    if not path.exists():
        return tr("The model folder {path} does not exist. {pick}").format(path=path, pick=pick)
    if not path.is_dir():
        return tr("{path} is a file, not a model package folder. {pick}").format(path=path, pick=pick)
    if not (path / "model.json").is_file():
        return tr("{path} is not an eo-ssl model package (no model.json in it). {pick}").format(path=path, pick=pick)
    return None


@dataclass
class Choices:
    """What the dialog's widgets say (its :meth:`choices`)."""

    out: str
    inputs: dict[str, Any]  # S2, S1, FEATURES(_PRESET), AOI, EXTENT, POI_START, POI_END: the algorithms' inputs
    chips: Path  # where the chip store is (or goes)
    store_ready: bool = False  # the chip store of these inputs exists: no prepare step
    device: str = "auto"
    parcels: str | None = None  # the parcels layer id
    class_field: str = ""
    pretrain: bool = False
    finetune: bool = False
    evaluate: bool = False
    predict: bool = False
    label: bool = False
    method: str = "rs-byol"
    variant: str | None = None  # resolved ('auto' already turned into what it means); rs-byol only
    s1_variant_problem: str | None = None  # the variant needs Sentinel-1 and no S1 layer is checked
    encoder: str = ""
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int | None = None
    crop: int = 64
    resume: bool = False
    arch: str = "pixel"
    quick: bool = True
    ft_epochs: int = 20
    label_fraction: float = 1.0
    tile: int | None = None
    model: str = ""  # '...or predict with this model'


def given(**params: Any) -> dict[str, Any]:
    """The parameters the user set: an empty text or None is left out, so the backend's or the method's default
    applies."""
    return {name: value for name, value in params.items() if value not in ("", None)}


def plan_steps(c: Choices, project=None) -> list[Step]:
    """The algorithm runs for these choices, in order: prepare, pre-train, fine-tune, predict, label parcels,
    evaluate (the compare report last: the map comes first). Raises ValueError with a message for the user."""
    if not c.out or c.out == ".":
        raise ValueError(tr("Choose an output folder."))
    if not c.inputs.get("S2") and not c.inputs.get("FEATURES"):
        raise ValueError(tr("Check at least one Sentinel-2 layer or feature raster."))
    if c.parcels is not None and not c.class_field and (c.finetune or c.evaluate):
        raise ValueError(tr("Choose the class field of the parcels."))
    if c.pretrain and c.s1_variant_problem:
        raise ValueError(c.s1_variant_problem)
    if not c.finetune and c.model.strip():
        problem = model_problem(c.model)  # said out loud, even when 'Predict' is not ticked
        if problem:
            raise ValueError(problem)
    if c.predict and not c.finetune and not c.model.strip():
        raise ValueError(tr("Tick 'Fine-tune' or choose a model package to predict with."))
    out = Path(c.out)
    chips = str(c.chips)
    steps: list[Step] = []
    if not c.store_ready:
        prepare = {**c.inputs, "OUTPUT": chips}
        if c.parcels is not None and c.class_field:
            prepare.update(PARCELS=c.parcels, CLASS_FIELD=c.class_field)
        steps.append(Step("eo_ssl:prepare", prepare, tr("Prepare data")))
    pretrained = out / "pretrained"
    if c.pretrain:
        params = {"DATA": chips, "METHOD": c.method, "EPOCHS": c.epochs, "CROP": c.crop, "DEVICES": c.device,
                  "RESUME": c.resume, "OUTPUT": str(pretrained),
                  **given(ENCODER=c.encoder.strip(), MAX_STEPS=c.max_steps, BATCH_SIZE=c.batch_size)}
        title = tr("Pre-train ({method})").format(method=c.method)
        if c.method == "rs-byol" and c.variant:
            params["VARIANT"] = c.variant
            title = tr("Pre-train ({method} {variant})").format(method=c.method, variant=c.variant)
        steps.append(Step("eo_ssl:pretrain", params, title))
    finetuned = out / "finetuned"
    if c.finetune:
        params = {"DATA": chips, "TASK": "segmentation", "ARCH": c.arch, "LABEL_FRACTION": c.label_fraction,
                  "DEVICES": c.device, "OUTPUT": str(finetuned)}
        if c.arch == "pixel":  # no epochs: a classifier fitted at once; quick: 2 candidates on 3000 pixels
            params["QUICK"] = bool(c.quick)
            title = tr("Fine-tune (pixel classifier, quick)") if c.quick else tr("Fine-tune (pixel classifier)")
        else:
            params.update(EPOCHS=c.ft_epochs, **given(MAX_STEPS=c.max_steps))
            title = tr("Fine-tune (U-Net)")
        if c.pretrain:
            params["INIT"] = str(pretrained)
        steps.append(Step("eo_ssl:finetune", params, title))
    if c.predict:
        model = finetuned if c.finetune else Path(c.model.strip()).expanduser()
        params = {"MODEL": str(model), **c.inputs, **given(TILE=c.tile), "DEVICES": c.device,
                  "OUTPUT": QgsProcessingOutputLayerDefinition(str(out / "landcover.tif"), project),
                  "CONFIDENCE": QgsProcessingOutputLayerDefinition(str(out / "confidence.tif"), project)}
        steps.append(Step("eo_ssl:predict", params, tr("Predict land cover")))
    if c.label and c.predict and c.parcels is not None:
        steps.append(Step("eo_ssl:label_parcels", {
            "MAP": str(out / "landcover.tif"), "CONFIDENCE": str(out / "confidence.tif"),
            "PARCELS": QgsProcessingFeatureSourceDefinition(c.parcels, False),
            "OUTPUT": QgsProcessingOutputLayerDefinition(str(out / "parcels_labelled.gpkg"), project)},
            tr("Label parcels")))
    if c.evaluate:
        params = {"DATA": chips, "PROTOCOL": "compare", "DEVICES": c.device, "OUTPUT": str(out / "report")}
        if c.pretrain:
            params["INIT"] = str(pretrained)
        else:  # no encoder to judge: the classic classifiers against the pixel classifier, in minutes (the U-Nets
            # from random init took half an hour on 2 busy cores and tell nothing about pre-training)
            params["PATHS"] = "classic,pixel"
        steps.append(Step("eo_ssl:evaluate", params, tr("Evaluate: which path gives the best map")))
    return steps
