"""The contract between the Processing algorithms and the backend's options (``backend/options.py``, the one
declaration the CLI's argparse is built from): every parameter mapped to an option has the option's default, range
and choices; every option of every command is reachable from QGIS or listed as command-line only with a reason.
A default changed on one side only fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.qgis


def _algorithms():
    from qgis_plugin.algorithms import ALGORITHMS

    out = []
    for cls in ALGORITHMS:
        alg = cls()
        alg.initAlgorithm()
        out.append(alg)
    return out


def _backend(command: str) -> dict:
    from backend.options import COMMANDS

    return {o.name: o for o in COMMANDS[command]}


def _effective_default(command: str, option) -> object:
    """The value the backend uses when the option is not given and it depends on the command only."""
    from qgis_plugin import backend_spec

    if option.default is not None:
        return option.default
    return backend_spec.spec()["command_defaults"].get(command, {}).get(option.dest)


def test_every_command_and_option_is_reachable_or_cli_only_with_a_reason(qgis_app) -> None:
    from backend.options import COMMANDS
    from qgis_plugin.algorithms import CLI_ONLY_COMMANDS

    algorithms = {alg.COMMAND: alg for alg in _algorithms()}
    assert set(algorithms) | set(CLI_ONLY_COMMANDS) == set(COMMANDS)
    assert not set(algorithms) & set(CLI_ONLY_COMMANDS)
    assert all(len(why) > 20 for why in CLI_ONLY_COMMANDS.values())
    for command, alg in algorithms.items():
        backend = _backend(command)
        mapped = {o for opts in alg.OPTIONS.values() for o in opts}
        assert mapped <= set(backend), f"{command}: options the backend lacks: {mapped - set(backend)}"
        assert not mapped & set(alg.CLI_ONLY), f"{command}: listed as CLI-only but mapped: {mapped & set(alg.CLI_ONLY)}"
        unreached = set(backend) - mapped - set(alg.CLI_ONLY)
        assert not unreached, f"{command}: options neither offered in QGIS nor listed as CLI-only: {sorted(unreached)}"
        assert all(len(why) > 10 for why in alg.CLI_ONLY.values()), command
        params = {p.name() for p in alg.parameterDefinitions()} - {"EXTRA_ARGS"}
        assert params == set(alg.OPTIONS), f"{command}: parameters without an option: {params ^ set(alg.OPTIONS)}"


def test_parameters_mirror_the_backend_options(qgis_app) -> None:
    from qgis.core import (
        QgsProcessingParameterBoolean,
        QgsProcessingParameterEnum,
        QgsProcessingParameterNumber,
        QgsProcessingParameterString,
    )

    from qgis_plugin.backend_spec import AUTO

    unbounded = QgsProcessingParameterNumber("UNBOUNDED")
    checked = 0
    for alg in _algorithms():
        command, backend = alg.COMMAND, _backend(alg.COMMAND)
        for name, reason in alg.OWN_DEFAULTS.items():
            assert len(reason) > 10 and name in alg.OPTIONS, (command, name)
        for name, options in alg.OPTIONS.items():
            param, option = alg.parameterDefinition(name), backend[options[0]]
            where = f"{command} {name} ({option.name})"
            own = name in alg.OWN_DEFAULTS
            if isinstance(param, QgsProcessingParameterNumber):
                assert option.type in ("int", "float"), where
                integer = param.dataType() == QgsProcessingParameterNumber.Integer
                assert integer == (option.type == "int"), f"{where}: type"
                default = _effective_default(command, option)
                assert param.defaultValue() == default, f"{where}: default {param.defaultValue()} != {default}"
                if default is None:
                    assert param.flags() & param.FlagOptional, f"{where}: no default, so it must be optional"
                lo = unbounded.minimum() if option.minimum is None else option.minimum
                hi = unbounded.maximum() if option.maximum is None else option.maximum
                assert (param.minimum(), param.maximum()) == (lo, hi), f"{where}: range"
            elif isinstance(param, QgsProcessingParameterEnum):
                choices = list(option.choices or option.values or ())
                left_out = alg.LEFT_OUT.get(name, {})
                assert set(left_out) <= set(choices) and all(len(w) > 10 for w in left_out.values()), where
                expected = [c for c in choices if c not in left_out]
                default = option.default
                if default is None and option.required:
                    default = expected[0]
                elif default is None:
                    expected, default = [AUTO, *expected], AUTO
                assert param.options() == expected, f"{where}: choices {param.options()} != {expected}"
                assert param.defaultValue() == default, f"{where}: default {param.defaultValue()} != {default}"
            elif isinstance(param, QgsProcessingParameterBoolean) and option.type == "flag":
                assert bool(param.defaultValue()) is own, f"{where}: a flag is off unless OWN_DEFAULTS says why"
                continue
            elif isinstance(param, QgsProcessingParameterString) and option.type == "str":
                assert param.defaultValue() in (None, "", option.default), f"{where}: default"
            else:
                continue
            assert not own, f"{where}: listed in OWN_DEFAULTS but mirrors the backend"
            checked += 1
    assert checked > 60, checked


def test_method_dependent_defaults_are_left_to_the_method(qgis_app) -> None:
    """The GUI sends no batch size, encoder or learning rate unless one is given: the method's own applies."""
    from qgis_plugin import backend_spec
    from qgis_plugin.algorithms.pretrain import PretrainAlgorithm

    alg = PretrainAlgorithm()
    alg.initAlgorithm()
    for name in ("BATCH_SIZE", "ENCODER", "LR", "WEIGHT_DECAY", "EMA"):
        assert alg.parameterDefinition(name).defaultValue() is None, name
    assert backend_spec.method_default("rs-byol", "batch_size") == 32
    assert backend_spec.method_default("byol", "batch_size") == 128
    assert "32 (rs-byol)" in alg.parameterDefinition("BATCH_SIZE").description()


def test_the_dialog_widgets_follow_the_spec(eo_provider, qgis_iface, monkeypatch) -> None:
    """The dialog's choices, ranges and defaults are the backend's; what depends on the method or the model is not
    sent unless the user sets it."""
    from qgis.core import QgsProject

    from backend.options import COMMANDS, METHODS, VARIANTS
    from qgis_plugin.algorithms.pretrain import CLI_ONLY_METHODS
    from qgis_plugin.dialog import EoSslDialog
    from qgis_plugin.dialog_widgets import spin_value

    monkeypatch.setenv("EO_SSL_NO_PROBE", "1")
    pretrain = {o.name: o for o in COMMANDS["pretrain"]}
    dlg = EoSslDialog(qgis_iface, project=QgsProject.instance())
    try:
        methods = [m for m in METHODS if m not in CLI_ONLY_METHODS]
        assert [dlg.method.itemText(i) for i in range(dlg.method.count())] == methods
        assert [dlg.variant.itemText(i) for i in range(dlg.variant.count())] == ["auto", *VARIANTS]
        assert dlg.encoder.currentText() == ""  # the method's
        assert spin_value(dlg.batch_size) is None and spin_value(dlg.tile) is None and spin_value(dlg.max_steps) is None
        assert dlg.crop.value() == pretrain["--crop"].default and dlg.crop.minimum() == pretrain["--crop"].minimum
        assert dlg.epochs.value() == 10 and dlg.ft_epochs.value() == 20  # pretrain's and finetune's own defaults
        assert dlg.tile.maximum() == 8192
        dlg.batch_size.setValue(dlg.batch_size.minimum() + 1)
        assert spin_value(dlg.batch_size) == pretrain["--batch-size"].minimum
    finally:
        dlg.disconnect_project()
        dlg.close()
        dlg.deleteLater()


def test_further_options_that_repeat_a_parameter_are_refused(eo_provider, tmp_path: Path) -> None:
    """Every option a parameter sets, typed again in 'Further backend options' (as ``--x v``, ``--x=v`` or
    argparse's abbreviation), is refused with the parameter's name: typed after the parameters it would silently
    win. Options no parameter sets (CLI_ONLY) still pass."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

    from qgis_plugin.algorithms import ALGORITHMS

    context = QgsProcessingContext()
    refused = 0
    for cls in ALGORITHMS:
        alg = QgsApplication.processingRegistry().createAlgorithmById(f"eo_ssl:{cls.NAME}")
        for name, options in alg.OPTIONS.items():
            for option in options:
                with pytest.raises(QgsProcessingException) as exc:
                    alg.extra_args({"EXTRA_ARGS": f"{option} 1"}, context)
                assert option in str(exc.value), (cls.NAME, option)
                assert f"'{alg.parameterDefinition(name).description()}'" in str(exc.value), (cls.NAME, option)
                refused += 1
        for option in alg.CLI_ONLY:
            assert alg.extra_args({"EXTRA_ARGS": f"{option} 1"}, context) == [option, "1"], (cls.NAME, option)
    assert refused > 150, refused
    pretrain = QgsApplication.processingRegistry().createAlgorithmById("eo_ssl:pretrain")
    for typed in ("--batch-size=8", "--batch 8", "--threads 2 --batch-size 8"):
        with pytest.raises(QgsProcessingException, match="'Batch size"):
            pretrain.extra_args({"EXTRA_ARGS": typed}, context)
    assert pretrain.extra_args({"EXTRA_ARGS": "--set queue_size=4096"}, context) == ["--set", "queue_size=4096"]
    # the toolbox and the dialog's runs hear it before anything starts (checkParameterValues)
    predict = QgsApplication.processingRegistry().createAlgorithmById("eo_ssl:predict")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text("{}")
    ok, message = predict.checkParameterValues({"MODEL": str(tmp_path / "model"), "S2_FOLDER": str(tmp_path),
                                                "EXTRA_ARGS": "--tile 128", "OUTPUT": str(tmp_path / "map.tif")},
                                               context)
    assert not ok and "--tile" in message and "'Tile size (pixels)'" in message


def test_defaults_shown_by_the_gui_are_the_backends(eo_provider) -> None:
    """The learning rates the pre-training shows are what each method trains with (the backend's
    ``learning_rate``, not a copy of its formula); the inference batch sizes predict and embed show are the
    backend's ``INFERENCE_BATCH_SIZE``."""
    from qgis.core import QgsApplication

    from backend.options import INFERENCE_BATCH_SIZE
    from backend.ssl.base import COMMON_DEFAULTS, learning_rate
    from backend.ssl.registry import IMAGE_METHODS
    from qgis_plugin import backend_spec

    registry = QgsApplication.processingRegistry()
    lr_label = registry.algorithmById("eo_ssl:pretrain").parameterDefinition("LR").description()
    for name, cls in IMAGE_METHODS.items():
        lr = learning_rate({**COMMON_DEFAULTS, **cls.DEFAULTS})
        assert backend_spec.method_default(name, "lr") == lr, name
        assert f"{lr:g} (" in lr_label and name in lr_label, (name, lr_label)
    shown = f"{INFERENCE_BATCH_SIZE['cpu']} on the CPU, {INFERENCE_BATCH_SIZE['cuda']} on a GPU"
    for command in ("predict", "embed"):
        assert backend_spec.device_defaults_text(command, "batch_size") == shown
        assert shown in registry.algorithmById(f"eo_ssl:{command}").parameterDefinition("BATCH_SIZE").description()


def test_input_dependent_defaults_in_the_labels_are_the_backends(eo_provider) -> None:
    """The defaults a label states that depend on the input (the encoder of a random initialisation, the frozen share
    of the steps from a package, a segmentation model's tile) are the backend's constants, through the spec."""
    from qgis.core import QgsApplication

    from backend.predict.scene import SEGMENTATION_TILE
    from backend.train.finetune import PRETRAINED_FROZEN_FRACTION
    from backend.train.init_source import DEFAULT_ENCODER
    from qgis_plugin import backend_spec

    assert (backend_spec.input_default("encoder_of_random"), backend_spec.input_default("frozen_fraction_from_package"),
            backend_spec.input_default("tile_of_segmentation")) == (DEFAULT_ENCODER, PRETRAINED_FROZEN_FRACTION,
                                                                    SEGMENTATION_TILE)
    registry = QgsApplication.processingRegistry()

    def label(alg: str, name: str) -> str:
        return registry.algorithmById(f"eo_ssl:{alg}").parameterDefinition(name).description()

    assert f"empty: {DEFAULT_ENCODER})" in label("finetune", "ENCODER")
    assert f"empty: {DEFAULT_ENCODER})" in label("evaluate", "ENCODER")
    assert f"empty: {PRETRAINED_FROZEN_FRACTION:g} from a package" in label("finetune", "FROZEN_FRACTION")
    tile = registry.algorithmById("eo_ssl:predict").parameterDefinition("TILE")
    assert f"Empty: {SEGMENTATION_TILE} for a segmentation model" in tile.help()
