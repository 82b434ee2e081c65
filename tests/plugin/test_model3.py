"""The example graphical model resources/models/predict_and_label.model3 (Predict land cover -> Label parcels): it is
what QgsProcessingModelAlgorithm writes (a fresh build equals the shipped file), it loads with its children resolved,
and it runs headless with processing.run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin.conftest import Recorder, require_command, run_alg

pytestmark = pytest.mark.qgis

MODEL_ID = "eo_ssl:predict_and_label"


def canonical(path: Path) -> str:
    from xml.etree.ElementTree import canonicalize

    text = path.read_text(encoding="utf-8").replace("<!DOCTYPE model>", "")
    return canonicalize(text, strip_text=True)


def test_shipped_model_equals_a_fresh_build(eo_provider, repo_root: Path, tmp_path: Path) -> None:
    import importlib.util

    from qgis_plugin.shipped_models import PREDICT_AND_LABEL

    script = repo_root / "scripts" / "build_example_model.py"
    spec = importlib.util.spec_from_file_location("build_example_model", script)
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    fresh = builder.write_predict_and_label(tmp_path / "fresh.model3")
    # Qt writes XML attributes in a hash order that changes between processes: compare canonical XML (C14N)
    assert canonical(PREDICT_AND_LABEL) == canonical(fresh), (
        "resources/models/predict_and_label.model3 is stale: regenerate it with "
        "`QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/build_example_model.py`")


def test_model_loads_with_its_chain(eo_provider) -> None:
    from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingModelChildParameterSource

    from qgis_plugin.shipped_models import PREDICT_AND_LABEL

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(PREDICT_AND_LABEL))
    children = model.childAlgorithms()
    assert set(children) == {"predict", "label_parcels"}
    assert all(child.algorithm() is not None for child in children.values())  # the ids resolve
    assert model.dependsOnChildAlgorithms("label_parcels") == {"predict"}
    sources = children["label_parcels"].parameterSources()
    (map_source,) = sources["MAP"]
    assert map_source.source() == QgsProcessingModelChildParameterSource.ChildOutput
    assert (map_source.outputChildId(), map_source.outputName()) == ("predict", "OUTPUT")
    assert sources["CONFIDENCE"][0].outputName() == "CONFIDENCE"
    names = {p.name() for p in model.parameterDefinitions()}
    assert {"model_package", "sentinel2", "sentinel1", "aoi", "parcels", "predict:Land-cover map",
            "label_parcels:Labelled parcels"} <= names
    # every child valid: every parameter has a value (the Model Designer shows no red child)
    for child_id in children:
        ok, issues = model.validateChildAlgorithm(child_id)
        assert ok, (child_id, issues)
    assert model.validate() == (True, [])
    # the provider offers it in the toolbox, under an id without spaces (history, batch files, scripts)
    from qgis.core import QgsApplication

    shipped = QgsApplication.processingRegistry().algorithmById(MODEL_ID)
    assert shipped is not None and {p.name() for p in shipped.parameterDefinitions()} == names
    assert " " not in shipped.id() and shipped.displayName() == "Predict land cover and label parcels"
    assert shipped.create().id() == MODEL_ID  # the instances a run (and the history) use keep the id


def test_model_runs_headless(eo_provider, finetuned, flanders, awkward_dir: Path) -> None:
    require_command("predict")
    require_command("label-parcels")
    out = awkward_dir / "model run ü"
    out.mkdir()
    feedback = Recorder()
    results = run_alg(MODEL_ID, {
        "model_package": str(finetuned["out"]), "sentinel2": [str(p) for p in flanders["s2"]],
        "sentinel1": [str(p) for p in flanders["s1"]], "parcels": str(flanders["parcels"]),
        "predict:Land-cover map": str(out / "map.tif"), "predict:Confidence": str(out / "confidence.tif"),
        "label_parcels:Labelled parcels": str(out / "parcels.gpkg")}, feedback)
    assert Path(results["predict:Land-cover map"]).is_file()
    assert Path(results["label_parcels:Labelled parcels"]).is_file()
    import sqlite3

    with sqlite3.connect(out / "parcels.gpkg") as con:
        table = con.execute("SELECT table_name FROM gpkg_contents WHERE data_type='features'").fetchone()[0]
        n, labelled = con.execute(f'SELECT count(*), sum(class_id IS NOT NULL) FROM "{table}"').fetchone()
    assert n == 19 and labelled > 0
    assert any("-m backend predict" in c for c in feedback.commands)
    assert any("-m backend label-parcels" in c for c in feedback.commands)
