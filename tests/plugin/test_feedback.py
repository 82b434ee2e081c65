"""Backend events -> Processing feedback (progress, text, log, warnings), the re-emitted event signal, error
messages, and the loss curve widget."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.qgis


def test_progress_text_and_eta() -> None:
    from qgis_plugin.algorithms.backend_run import format_eta, progress_text

    assert format_eta(65) == "1:05" and format_eta(3725) == "1:02:05" and format_eta(None) == ""
    text = progress_text({"step": 12, "total": 100, "epoch": 2, "loss": 0.43121, "eta_s": 65, "stage": "train",
                          "metrics": {"imgs_s": 812.5}})
    assert text == "train 12/100 · epoch 2 · loss 0.4312 · imgs_s 812 · ETA 1:05"


def test_events_reach_the_feedback(qgis_app) -> None:
    from qgis.core import QgsProcessingFeedback

    from qgis_plugin.algorithms.backend_run import EventFeedback, EventForwarder

    seen: list[dict] = []
    feedback = EventFeedback()
    feedback.backendEvent.connect(seen.append)
    progress: list[float] = []
    feedback.progressChanged.connect(progress.append)
    fwd = EventForwarder(feedback)
    events = [
        {"event": "start", "command": "pretrain"},
        {"event": "progress", "step": 5, "total": 10, "epoch": 1, "loss": 1.5, "eta_s": 3},
        {"event": "log", "message": "using the CPU", "level": "info"},
        {"event": "log", "message": "slow", "level": "warning"},
        {"event": "warning", "code": "collapse", "message": "embedding std 0.001"},
        {"event": "artifact", "kind": "model", "path": "/x/model"},
        {"event": "done", "ok": True, "summary": {"final_loss": 0.9}, "elapsed_s": 1.2},
    ]
    for e in events:
        fwd(e)
    fwd.stderr("some library warning")
    assert seen == events
    assert progress == [50.0]
    log = feedback.textLog()
    for needle in ("using the CPU", "slow", "Warning [collapse]: embedding std 0.001", "Wrote model: /x/model",
                   "final_loss: 0.9", "some library warning", "epoch 1 · loss 1.5"):
        assert needle in log, needle
    plain = QgsProcessingFeedback()
    EventForwarder(plain)({"event": "progress", "step": 1, "total": 4})  # no signal: no error
    assert plain.progress() == 25.0


def test_error_messages() -> None:
    """The backend's hints stay for the CLI: for the codes the plugin knows (one table, messages.GUI_HINTS) QGIS says
    what to do in its own words, with the backend's option names turned into the names of QGIS's settings; an
    unknown code keeps the backend's hint."""
    from qgis_plugin.algorithms.backend_run import error_message
    from qgis_plugin.messages import GUI_HINTS

    text = error_message("pretrain", {
        "code": "no_checkpoint", "message": "--resume: /runs/x holds no checkpoint to continue from.",
        "hint": "Point --out at the folder of the interrupted run, or run without --resume."})
    assert text.startswith("eo-ssl pretrain failed [no_checkpoint]: 'Resume': /runs/x holds no checkpoint")
    assert "What to do: Untick 'Resume' to start afresh" in text and "--" not in text
    s1 = error_message("pretrain", {"code": "s1_missing", "message": "x has no Sentinel-1 data.",
                                    "hint": "Prepare the store with --s2 ... --s1 ..., or use --variant s2-only."})
    assert "variant 'auto' or 's2-only'" in s1 and "--" not in s1
    gpu = error_message("pretrain", {"code": "no_gpu", "message": "--devices 1 asks for a GPU but torch sees none.",
                                     "hint": "Use --devices cpu."})
    assert "Devices 1 asks for a GPU" in gpu and "Raster > eo-ssl > Set up the backend…" in gpu
    assert "Settings > Options… > eo-ssl" in gpu and "--" not in gpu
    unknown = error_message("prepare", {"code": "brand_new", "message": "Something --odd.", "hint": "Give --s2."})
    assert unknown == "eo-ssl prepare failed [brand_new]: Something --odd.\nWhat to do: Give --s2."
    crash = error_message("predict", {"code": "backend_crashed", "message": "ended (exit code -9)",
                                      "detail": "line 1\nKilled\n"})
    assert "exit code -9" in crash and "Killed" in crash
    assert "Resume" in error_message("pretrain", {"code": "cancelled"})
    # every hint of the table speaks QGIS: no command-line option in it
    assert not [code for code, hint in GUI_HINTS.items() if " --" in hint or hint.startswith("--")]


def test_the_hints_name_the_codes_the_backend_raises(repo_root) -> None:
    """The table is about codes that exist: each is raised somewhere in backend/ (or made up by the runner)."""
    import re

    from qgis_plugin.messages import GUI_HINTS

    source = "\n".join(p.read_text(encoding="utf-8") for p in (repo_root / "backend").rglob("*.py"))
    raised = set(re.findall(r"[\"']([a-z][a-z0-9_]+)[\"']", source))
    assert not [code for code in GUI_HINTS if code not in raised and code != "backend_not_started"]


def test_loss_plot_draws(qgis_app, docs_img) -> None:
    from qgis.PyQt.QtGui import QImage

    from qgis_plugin.loss_plot import LossPlot

    plot = LossPlot()
    plot.resize(420, 200)
    empty = plot.grab().toImage()
    plot.start_series("Pre-train")
    for step in range(1, 21):
        plot.add_event({"event": "progress", "step": step, "loss": 2.0 / step})
    plot.add_event({"event": "progress", "step": 21, "loss": None})  # ignored
    plot.add_event({"event": "log", "message": "x"})  # ignored
    assert plot.points() == 20
    drawn = plot.grab().toImage()
    assert isinstance(drawn, QImage) and drawn != empty
    plot.clear()
    assert plot.points() == 0
