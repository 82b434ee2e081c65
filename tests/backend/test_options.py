"""backend.options: every command's options declared once. argparse is built from the declarations, values are
checked against their ranges before the command's module (torch, Lightning) is imported, the declarations are plain
data (JSON), and the choice lists and defaults agree with the code that uses them."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from backend import options
from backend.errors import EoSslError
from tests.backend.data_helpers import REPO


def parse(command: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    options.add_arguments(parser, command)
    return parser.parse_args(argv)


def test_every_command_parses_its_declared_defaults():
    required = {"prepare": ["--out", "o"], "pretrain": ["--data", "d", "--method", "byol", "--out", "o"],
                "finetune": ["--data", "d", "--out", "o"],
                "evaluate": ["--data", "d", "--out", "o"],
                "predict": ["--model", "m", "--out", "o.tif"], "embed": ["--model", "m", "--out", "e.tif"],
                "label-parcels": ["--map", "m.tif", "--parcels", "p.gpkg", "--out", "o.gpkg"],
                "export-dataset": ["--parcels", "p.gpkg", "--class-field", "c", "--out", "o"],
                "import-weights": ["w.pth", "--encoder", "resnet18", "--out", "o"],
                "export-onnx": ["--model", "m", "--out", "o.onnx"],
                "similar": ["--features", "f.tif", "--examples", "e.gpkg", "--out", "s.tif"]}
    assert set(required) == set(options.COMMANDS)
    for command, argv in required.items():
        args = parse(command, argv)
        options.validate(command, args)  # the defaults are in range
        for o in options.COMMANDS[command]:
            if not o.required and o.name not in argv:  # predict's --out: optional (with --scenes), given here
                assert getattr(args, o.dest) == (False if o.type == "flag" else o.default), (command, o.name)
        names = [o.name for o in options.COMMANDS[command]]
        assert len(names) == len(set(names)), command


@pytest.mark.parametrize("command,argv,code", [
    ("prepare", ["--resolution", "nan"], "bad_resolution"),
    ("prepare", ["--resolution", "inf"], "bad_resolution"),
    ("prepare", ["--resolution", "100000"], "bad_resolution"),
    ("prepare", ["--resolution", "0"], "bad_resolution"),
    ("prepare", ["--window", "-5"], "bad_argument"),
    ("prepare", ["--val-fraction", "1"], "bad_argument"),
    ("predict", ["--model", "m", "--overlap", "1"], "bad_argument"),
    ("predict", ["--model", "m", "--batch-size", "0"], "bad_argument"),
    ("finetune", ["--data", "d", "--batch-size", "0"], "bad_argument"),
    ("finetune", ["--data", "d", "--label-fraction", "0"], "bad_argument"),
    ("finetune", ["--data", "d", "--lr", "-1"], "bad_argument"),
    ("evaluate", ["--init", "random", "--data", "d", "--k", "0"], "bad_argument"),
    ("pretrain", ["--data", "d", "--method", "byol", "--crop", "8"], "bad_argument"),
    ("pretrain", ["--data", "d", "--method", "byol", "--ema", "1.5"], "bad_argument"),
    ("label-parcels", ["--map", "m", "--parcels", "p", "--min-fraction", "1.5"], "bad_threshold"),
    ("label-parcels", ["--map", "m", "--parcels", "p", "--window", "8"], "bad_window"),
    ("export-dataset", ["--parcels", "p", "--class-field", "c", "--chip", "4"], "bad_chip_size"),
    ("import-weights", ["w.pth", "--encoder", "resnet18", "--resolution", "-10"], "bad_resolution"),
    ("export-onnx", ["--model", "m", "--overlap", "1.5"], "bad_argument"),
])
def test_out_of_range_values_are_refused(command, argv, code):
    args = parse(command, [*argv, "--out", {"predict": "o.tif", "export-onnx": "o.onnx"}.get(command, "o")])
    with pytest.raises(EoSslError) as info:
        options.validate(command, args)
    assert info.value.code == code
    assert argv[-2] in info.value.message and info.value.hint


def test_paths_by_role():
    args = parse("export-dataset", ["--s2", "a.tif", "b.tif", "--parcels", "p.gpkg", "--class-field", "c",
                                    "--out", "o"])
    assert options.paths("export-dataset", args, "input") == [("--s2", "a.tif"), ("--s2", "b.tif"),
                                                              ("--parcels", "p.gpkg")]
    assert options.paths("export-dataset", args, "output") == [("--out", "o")]


def test_the_spec_is_plain_data():
    spec = json.loads(json.dumps(options.spec()))
    predict = {o["name"]: o for o in spec["predict"]}
    assert predict["--overlap"]["minimum"] == 0 and predict["--overlap"]["maximum_open"] is True
    assert predict["--out"]["role"] == "output" and predict["--model"]["required"] is True


def test_set_keys_are_checked():
    assert options.parse_sets(["queue_size=10", "name=x"], ["queue_size", "name"]) == {"queue_size": 10, "name": "x"}
    with pytest.raises(EoSslError) as info:
        options.parse_sets(["queue_sizee=10"], ["queue_size", "temperature"], "moco-v2")
    assert info.value.code == "bad_argument" and "queue_size, temperature" in info.value.hint


def test_choices_and_defaults_agree_with_the_code():
    from backend.parcels.zonal import WINDOW
    from backend.ssl.registry import METHODS
    from backend.train import evaluate, finetune, pretrain

    assert set(options.METHODS) == set(METHODS)
    assert pretrain.METHOD_NAMES is options.METHODS and finetune.TASKS is options.TASKS
    assert evaluate.PROTOCOLS is options.PROTOCOLS
    window = next(o for o in options.LABEL_PARCELS if o.name == "--window")
    assert window.default == WINDOW


def test_help_and_bad_arguments_cost_no_torch_import():
    """Every command's --help, and a bad value, are answered without importing torch (seconds saved per call)."""
    code = (
        "import contextlib, io, sys\n"
        "from backend.cli import main\n"
        "for c in ('prepare', 'pretrain', 'finetune', 'evaluate', 'predict', 'label-parcels', 'export-dataset',\n"
        "          'import-weights', 'export-onnx'):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main([c, '--help'])\n"
        "        except SystemExit as e:\n"
        "            assert e.code == 0\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    rc = main(['finetune', '--data', 'x', '--out', 'y', '--batch-size', '0', '--events'])\n"
        "print(rc, buf.getvalue().splitlines()[-2])\n"
        "print('TORCH', 'torch' in sys.modules)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    rc_line, torch_line = proc.stdout.splitlines()[-2:]
    assert rc_line.startswith("2 ") and json.loads(rc_line[2:])["code"] == "bad_argument"
    assert torch_line == "TORCH False"


def test_the_plugin_option_spec_is_fresh() -> None:
    """qgis_plugin/backend_options.json (what the QGIS plugin reads: it never imports the backend) equals a fresh
    generation from backend/options.py and the methods' defaults; regenerate it with
    ``.venv/bin/python scripts/generate_option_spec.py``."""
    import importlib.util

    loader = importlib.util.spec_from_file_location("generate_option_spec",
                                                    REPO / "scripts" / "generate_option_spec.py")
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    committed = module.TARGET.read_text(encoding="utf-8")
    assert committed == module.text(), "qgis_plugin/backend_options.json is stale: run scripts/generate_option_spec.py"
    spec = json.loads(committed)
    assert spec["methods"]["rs-byol"]["encoder"] == "resnet18"  # the one default for the GUI, the demo and the CLI
    assert spec["methods"]["rs-byol"]["batch_size"] == 32 and spec["methods"]["byol"]["batch_size"] == 128


# -- issue 23: --set never shadows a named option; rs-byol's variant auto -------------------------------------------
def test_a_set_key_a_named_option_sets_is_refused_naming_it():
    """``--set batch_size=8`` while ``--batch-size`` exists was accepted, then silently overwritten: it is refused
    (bad_argument) with the option to use, for every method's keys that a named option of pretrain sets."""
    from backend.ssl.registry import METHODS

    for name, method in METHODS.items():
        keys = method.set_keys()
        owners = options.set_owners("pretrain", keys, momentum="--ema")
        assert owners["lr"] == "--lr" and owners["weight_decay"] == "--weight-decay", name
        assert ("momentum" in keys) == (owners.get("momentum") == "--ema"), name
        for key, option in owners.items():
            with pytest.raises(EoSslError) as err:
                options.parse_sets([f"{key}=8"], keys, name, owners)
            assert err.value.code == "bad_argument" and f"Use {option} 8" in err.value.hint, (name, key)
        free = next(k for k in keys if k not in owners)  # a key no option sets still goes through --set
        assert options.parse_sets([f"{free}=3"], keys, name, owners) == {free: 3}
    assert options.set_owners("pretrain", METHODS["byol"].set_keys())["batch_size"] == "--batch-size"


def test_set_batch_size_on_the_command_line_names_batch_size(tmp_path):
    from tests.backend.data_helpers import run_in_process

    rc, events = run_in_process("pretrain", ["--data", tmp_path / "store", "--method", "byol", "--set",
                                             "batch_size=8", "--out", tmp_path / "model"])
    error = next(e for e in events if e["event"] == "error")
    assert rc == 2 and error["code"] == "bad_argument" and "use --batch-size" in error["hint"].lower(), error
    assert not (tmp_path / "model").exists()


@pytest.fixture(scope="module")
def sample_stores(sample_dir, tmp_path_factory) -> dict[str, str]:
    """The 2018 Flanders sample prepared from Sentinel-2 alone and from Sentinel-2 and Sentinel-1 (3 dates each)."""
    from tests.backend.data_helpers import prepare_ok

    d = sample_dir / "worldcereal_flanders_2018"
    root = tmp_path_factory.mktemp("variant_auto")
    s2 = [d / "s2" / f for f in ("S2_20170824.tif", "S2_20180119.tif", "S2_20180628.tif")]
    s1 = sorted((d / "s1").glob("S1_*.tif"))[:3]
    prepare_ok(["--s2", *s2, "--out", root / "s2"])
    prepare_ok(["--s2", *s2, "--s1", *s1, "--out", root / "s2s1"])
    return {"s2": str(root / "s2"), "s2s1": str(root / "s2s1")}


class _Logs:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


def test_rs_byol_variant_auto_follows_the_stores_sensors(sample_stores):
    """``--variant auto`` (the default) is ``single`` when every store has Sentinel-1 and Sentinel-2, ``s2-only``
    when one has Sentinel-2 only (as the plugin chooses), and the log says which."""
    from backend.train.pretrain import auto_variant

    logs = _Logs()
    assert auto_variant([sample_stores["s2s1"]], logs) == "single"  # type: ignore[arg-type]
    assert auto_variant([sample_stores["s2s1"], sample_stores["s2"]], logs) == "s2-only"  # type: ignore[arg-type]
    assert auto_variant([sample_stores["s2"]], None) == "s2-only"
    assert logs.lines[0] == "rs-byol --variant auto: single (every store has Sentinel-1 and Sentinel-2)"
    assert logs.lines[1] == f"rs-byol --variant auto: s2-only (no Sentinel-1 in {sample_stores['s2']})"
    assert parse("pretrain", ["--data", "x", "--method", "rs-byol", "--out", "o"]).variant == "auto"
    assert parse("pretrain", ["--data", "x", "--method", "rs-byol", "--variant", "auto", "--out", "o"]).variant == \
        "auto"


@pytest.mark.slow
def test_rs_byol_without_variant_trains_on_sentinel_2_alone(sample_stores, tmp_path):
    """``pretrain --method rs-byol`` on a store without Sentinel-1 and no ``--variant`` was refused (s1_missing): it
    now trains the s2-only variant and says so."""
    from tests.backend.data_helpers import run_in_process

    out = tmp_path / "model"
    rc, events = run_in_process("pretrain", ["--data", sample_stores["s2"], "--method", "rs-byol", "--encoder",
                                             "resnet10t", "--crop", "32", "--batch-size", "4", "--max-steps", "1",
                                             "--num-workers", "0", "--devices", "cpu", "--out", out])
    assert rc == 0, [e for e in events if e["event"] == "error"]
    assert "rs-byol --variant auto: s2-only" in " ".join(e.get("message", "") for e in events if e["event"] == "log")
    assert json.loads((out / "model.json").read_text())["variant"] == "s2-only"
    assert events[-1]["summary"]["variant"] == "s2-only"
