"""The first-run panel (Raster > eo-ssl > Set up the backend…): the way from a freshly installed plugin to a working
backend, without reading any documentation.

Two offers, one tab each:

- **Create the backend environment**: a virtual environment in the QGIS profile (:mod:`.venv_setup`). The exact
  commands are shown before anything runs; while they run, a progress bar (step k of n and what pip is doing), the
  full log (with *Copy log*, and a copy in ``<profile>/eo_ssl/create-venv.log``) and *Cancel*. When it is done the
  new environment is checked and becomes the backend Python.
- **Use an existing Python**: pick an interpreter that has the backend's packages; it is checked (in the background)
  before it is saved as the backend Python.

Everything slow (looking for Python and the GPU, pip, the check) runs in QgsTasks: QGIS stays usable, and closing
the panel only hides it (a creation goes on, its progress in QGIS's task manager).
"""

from __future__ import annotations

import html
import threading
from pathlib import Path

from qgis.gui import QgsFileWidget
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QTimer, pyqtSignal
from qgis.PyQt.QtGui import QFont, QIcon
from qgis.PyQt.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from . import names, settings, tasks, venv_setup
from .environment import BackendReport
from .i18n import tr
from .log_view import FollowingLog
from .paths import ICON, ROOT


def _mono() -> QFont:
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.TypeWriter)
    return font


class BackendSetupDialog(QDialog):
    """The first-run panel. ``backendReady(report)`` is emitted when a backend Python was checked and saved."""

    backendReady = pyqtSignal(object)  # noqa: N815

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("EoSslSetupDialog")
        self.setWindowTitle(tr("eo-ssl: set up the backend"))
        self.setWindowIcon(QIcon(str(ICON)))
        self.plan: venv_setup.Plan | None = None
        self.base: venv_setup.BasePython | None = None
        self.plan_task: tasks.CallTask | None = None
        self.create_task: tasks.CallTask | None = None
        self.check_task: tasks.CallTask | None = None
        self.last_report: BackendReport | None = None
        self._pending: list[str] = []
        self._pending_lock = threading.Lock()
        self._step_text = ""
        self.log_lines: list[str] = []

        lay = QVBoxLayout(self)
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.intro.setText(tr(
            "<b>eo-ssl runs its training and mapping in its own Python environment</b> (PyTorch, timm, Lightning, "
            "rasterio), outside QGIS, so that QGIS never loads PyTorch. Create that environment here (the commands "
            "are shown before anything runs), or use a Python that already has the backend's packages. This panel "
            "stays at {menu}").format(menu=html.escape(tr(names.SETUP_MENU_PATH))))
        lay.addWidget(self.intro)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._create_tab(), tr(names.CREATE_BUTTON))
        self.tabs.addTab(self._existing_tab(), tr(names.EXISTING_BUTTON))
        lay.addWidget(self.tabs, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)
        self.flush_timer = QTimer(self)
        self.flush_timer.setInterval(200)
        self.flush_timer.timeout.connect(self._flush)
        self.resize(860, 640)

    # == layout ====================================================================================================
    def _create_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        form = QFormLayout()
        self.venv_label = QLabel(html.escape(str(settings.managed_venv_dir())))
        self.venv_label.setWordWrap(True)
        form.addRow(tr("Location"), self.venv_label)
        self.base_widget = QgsFileWidget()
        self.base_widget.setStorageMode(QgsFileWidget.GetFile)
        self.base_widget.setToolTip(tr("The Python (3.11 or 3.12) the environment is made from; it is never changed."))
        self.base_widget.fileChanged.connect(self._base_changed)
        form.addRow(tr("Made from"), self.base_widget)
        self.torch_label = QLabel(tr("looking for Python and the GPU…"))
        self.torch_label.setWordWrap(True)
        form.addRow(tr("PyTorch"), self.torch_label)
        lay.addLayout(form)
        self.commands_label = QLabel(tr("These commands will run, in this order (no shell; about 2–6 GB are "
                                        "downloaded, most of it PyTorch):"))
        self.commands_label.setWordWrap(True)
        lay.addWidget(self.commands_label)
        self.commands = QPlainTextEdit()
        self.commands.setReadOnly(True)
        self.commands.setFont(_mono())
        self.commands.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.commands.setMaximumHeight(130)
        lay.addWidget(self.commands)
        hl = QHBoxLayout()
        self.create_button = QPushButton(tr(names.CREATE_BUTTON))
        self.create_button.setEnabled(False)
        self.create_button.clicked.connect(self.start_creation)
        self.cancel_button = QPushButton(tr("Cancel"))
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_creation)
        self.copy_button = QPushButton(tr("Copy log"))
        self.copy_button.clicked.connect(self.copy_log)
        hl.addWidget(self.create_button)
        hl.addWidget(self.cancel_button)
        hl.addStretch(1)
        hl.addWidget(self.copy_button)
        lay.addLayout(hl)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        lay.addWidget(self.progress)
        self.create_status = QLabel("")
        self.create_status.setWordWrap(True)
        lay.addWidget(self.create_status)
        self.log = FollowingLog()
        self.log.setFont(_mono())
        self.log.setMaximumBlockCount(20000)
        self.log.setPlaceholderText(tr("The output of the commands appears here."))
        lay.addWidget(self.log, 1)
        return w

    def _existing_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        text = QLabel(tr(
            "Choose the Python interpreter of an environment that has the backend's packages: a virtual environment "
            "or a conda environment with Python 3.11 or newer where you ran<br><code>{cmd}</code><br>(the two files "
            "are in the plugin folder {root}). It is checked before it is used: the check starts it, imports "
            "PyTorch and looks for the GPU.").format(
                cmd=html.escape("python -m pip install -c constraints.txt -r requirements.lock"),
                root=html.escape(str(ROOT))))
        text.setWordWrap(True)
        lay.addWidget(text)
        hl = QHBoxLayout()
        self.python_widget = QgsFileWidget()
        self.python_widget.setStorageMode(QgsFileWidget.GetFile)
        self.python_widget.setFilePath(settings.backend_python_setting() or "")
        self.use_button = QPushButton(tr("Check and use this Python"))
        self.use_button.clicked.connect(self.use_existing)
        hl.addWidget(self.python_widget, 1)
        hl.addWidget(self.use_button)
        lay.addLayout(hl)
        self.existing_status = QLabel("")
        self.existing_status.setWordWrap(True)
        lay.addWidget(self.existing_status)
        lay.addStretch(1)
        return w

    # == the plan ==================================================================================================
    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.plan is None and self.plan_task is None and self.create_task is None:
            self.refresh_plan()

    def refresh_plan(self, base_python: str | None = None) -> None:
        """Look for a Python to create the environment with and for the GPU (seconds: nvidia-smi), in a task."""
        if self.plan_task is not None:
            return
        self.create_button.setEnabled(False)
        self.torch_label.setText(tr("looking for Python and the GPU…"))
        wanted = base_python or settings.get(settings.SETTINGS_BASE_PYTHON) or None

        def work(_task):
            base = venv_setup.base_python(wanted)
            gpu = venv_setup.detect_gpu()
            the_plan = venv_setup.plan(settings.managed_venv_dir(), base.exe, gpu=gpu) if base.exe else None
            return base, the_plan, gpu

        self.plan_task = tasks.start(tr("eo-ssl: looking for Python and the GPU"), work, self._plan_ready)

    def _plan_ready(self, task: tasks.CallTask) -> None:
        if sip.isdeleted(self):
            return
        self.plan_task = None
        if task.result is None:
            self.torch_label.setText(tr("The search failed: {error}").format(error=task.error))
            return
        base, the_plan, gpu = task.result
        self.set_plan(the_plan, base, gpu)

    def set_plan(self, the_plan: venv_setup.Plan | None, base: venv_setup.BasePython | None = None,
                 gpu: venv_setup.GpuInfo | None = None) -> None:
        """Show what will run (the tests give their own plan here)."""
        self.plan, self.base = the_plan, base
        if base is not None and base.exe:
            self.base_widget.blockSignals(True)
            self.base_widget.setFilePath(base.exe)
            self.base_widget.blockSignals(False)
        gpu = gpu or (the_plan.gpu if the_plan is not None else None)
        if the_plan is None:
            self.commands.setPlainText("")
            self.torch_label.setText("<span style='color:#b00'>{}</span>".format(html.escape(tr(
                "No Python 3.11 or 3.12 with the venv module was found ({found}). Install one (python.org, or your "
                "package manager: e.g. sudo apt install python3 python3-venv) and choose it above, or use an "
                "existing Python with the backend's packages (second tab).").format(
                    found="; ".join(base.problems) if base and base.problems else tr("none on the PATH")))))
            self.create_button.setEnabled(False)
            return
        build = tr("CPU build") if the_plan.wheel_tag == "cpu" else tr("CUDA build {tag}").format(
            tag=the_plan.wheel_tag)
        self.torch_label.setText(html.escape(tr("{build}, for: {gpu}").format(
            build=build, gpu=gpu.describe() if gpu else "-")))
        self.commands.setPlainText(the_plan.text())
        self.create_button.setEnabled(self.create_task is None)

    def _base_changed(self, path: str) -> None:
        if path and self.create_task is None:
            settings.put(settings.SETTINGS_BASE_PYTHON, path)
            self.refresh_plan(path)

    # == creating ==================================================================================================
    def start_creation(self) -> bool:
        """Run the plan shown (in a task). False when there is nothing to run or a run is going on."""
        if self.plan is None or self.create_task is not None:
            return False
        the_plan = self.plan
        self.log.clear()
        self.log_lines = []
        self.progress.setValue(0)
        self.create_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.base_widget.setEnabled(False)
        self.create_status.setText(tr("Starting…"))
        self.progress.setFormat("%p%")

        def on_line(line: str) -> None:
            with self._pending_lock:
                self._pending.append(line)

        def on_step(index: int, count: int) -> None:
            with self._pending_lock:
                self._pending.append(f"\0step {index} {count}")

        def work(task):
            return venv_setup.run_plan(the_plan, on_line=on_line, on_step=on_step, is_cancelled=task.isCanceled)

        self.flush_timer.start()
        self.create_task = tasks.start(tr("eo-ssl: creating the backend environment"), work, self._creation_done)
        return True

    def cancel_creation(self) -> None:
        if self.create_task is not None:
            self.create_task.cancel()
            self.cancel_button.setEnabled(False)
            self.create_status.setText(tr("Cancelling: stopping the running command…"))

    def _flush(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for line in pending:
            if line.startswith("\0step "):
                index, count = (int(v) for v in line.split()[1:3])
                self.progress.setValue(int(100 * index / max(count, 1)))
                self._step_text = tr("Step {k} of {n}").format(k=index + 1, n=count)
                self.progress.setFormat(f"%p%  {self._step_text}")
                # the status line says the new step at once (not the previous step's last pip line)
                steps = self.plan.steps if self.plan is not None else []
                what = tr(venv_setup.step_title(steps[index])) if index < len(steps) else ""
                self.create_status.setText(html.escape(f"{self._step_text}: {what}" if what else self._step_text))
                continue
            self.log_lines.append(line)
            self.log.append_line(line)
            status = venv_setup.pip_status(line)
            if status:
                self.create_status.setText(html.escape(f"{self._step_text}: {status}"))

    def _creation_done(self, task: tasks.CallTask) -> None:
        if sip.isdeleted(self):
            return
        self.flush_timer.stop()
        self._flush()
        self.create_task = None
        self.cancel_button.setEnabled(False)
        self.base_widget.setEnabled(True)
        ok, message = task.result if task.result else (False, "cancelled" if task.isCanceled() else task.error)
        self._save_log()
        self.log.show_end()
        if ok:
            self.progress.setValue(100)
            self.progress.setFormat("%p%")
            self.append(tr("Done: {message}. Checking the new environment…").format(message=message))
            self.create_status.setText(tr("Created. Checking the new environment (it imports PyTorch)…"))
            self.check_python(str(self.plan.python if self.plan else ""))
            return
        self.create_button.setEnabled(self.plan is not None)
        if message == "cancelled":
            text = tr("Cancelled. What was installed so far stays in {venv}; '{create}' continues from there.").format(
                venv=self.plan.venv if self.plan else "", create=tr(names.CREATE_BUTTON))
        else:
            text = tr("Failed: {message}. The log above says why (Copy log puts it on the clipboard); "
                      "'{create}' tries again and keeps what was installed.").format(
                message=message, create=tr(names.CREATE_BUTTON))
        self.append(text)
        self.create_status.setText(f"<span style='color:#b00'>{html.escape(text)}</span>")

    def append(self, line: str) -> None:
        self.log_lines.append(line)
        self.log.append_line(line)

    def log_text(self) -> str:
        return "\n".join(self.log_lines)

    def copy_log(self) -> str:
        text = self.log_text()
        QApplication.clipboard().setText(text)
        return text

    def _save_log(self) -> Path | None:
        """A copy of the log in ``<profile>/eo_ssl/create-venv.log`` (for a bug report after the panel is closed)."""
        path = settings.profile_dir() / "create-venv.log"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.log_text() + "\n", encoding="utf-8")
            return path
        except OSError:
            return None

    # == checking and using a Python ===============================================================================
    def use_existing(self) -> bool:
        path = self.python_widget.filePath().strip()
        if not path:
            self.existing_status.setText(tr("Choose a Python interpreter first."))
            return False
        self.existing_status.setText(tr("Checking {python} (it imports PyTorch: a few seconds)…").format(
            python=html.escape(path)))
        self.use_button.setEnabled(False)
        return self.check_python(path)

    def check_python(self, python: str) -> bool:
        """Probe ``python`` in a task; when it works it becomes the backend Python (``backendReady``)."""
        if self.check_task is not None or not python:
            return False
        self.check_task = tasks.probe(lambda task: self._checked(task, python), python=python)
        return True

    def _checked(self, task: tasks.CallTask, python: str) -> None:
        if sip.isdeleted(self):
            return
        self.check_task = None
        self.use_button.setEnabled(True)
        report: BackendReport | None = task.result
        self.last_report = report
        if report is not None and report.ok:
            settings.put(settings.SETTINGS_PYTHON, python)
            text = tr("Ready: {summary}. This is now the backend Python (see {options}).").format(
                summary=report.summary(), options=tr(names.OPTIONS_PATH))
            colour = "#1a7f37"
            self.backendReady.emit(report)
        else:
            problem = report.error if report is not None else task.error
            hint = report.hint if report is not None and report.hint else ""
            text = tr("Not usable: {problem}. {hint}").format(problem=problem, hint=hint).strip()
            colour = "#b00"
        label = self.existing_status if self.tabs.currentIndex() == 1 else self.create_status
        label.setText(f"<span style='color:{colour}'>{html.escape(text)}</span>")
        if self.tabs.currentIndex() == 0:
            self.append(text)
            self._save_log()
