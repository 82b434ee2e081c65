"""The backend diagnostics panel: which Python, backend, torch and device the plugin uses, a 'copy report' button,
choosing another interpreter, and creating the managed environment (the exact commands are shown first)."""

from __future__ import annotations

import html
import platform

from qgis.core import Qgis, QgsApplication, QgsTask
from qgis.PyQt.QtCore import QTimer, pyqtSignal
from qgis.PyQt.QtGui import QFont, QIcon
from qgis.PyQt.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
)

from . import settings, venv_setup
from .environment import BackendReport, report_text
from .paths import ICON, ROOT, plugin_version


class CallTask(QgsTask):
    """Run a function off the main thread; ``result`` holds its return value."""

    def __init__(self, description: str, fn) -> None:
        super().__init__(description, QgsTask.CanCancel)
        self.fn = fn
        self.result = None
        self.error: str | None = None

    def run(self) -> bool:
        try:
            self.result = self.fn(self)
            return True
        except Exception as exc:  # noqa: BLE001 - reported in the panel, never raised into QGIS
            self.error = f"{type(exc).__name__}: {exc}"
            return False


def environment_extra() -> dict[str, str]:
    gpu = venv_setup.detect_gpu()
    return {"plugin version": plugin_version(), "plugin folder": str(ROOT),
            "QGIS": f"{Qgis.QGIS_VERSION} ({platform.system()} {platform.release()})",
            "QGIS Python": platform.python_version(),
            "managed venv": str(settings.managed_venv_dir()),
            "nvidia-smi": gpu.describe()}


class DiagnosticsDialog(QDialog):
    reportReady = pyqtSignal(object)  # noqa: N815

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("eo-ssl backend diagnostics")
        self.setWindowIcon(QIcon(str(ICON)))
        self.setObjectName("EoSslDiagnostics")
        self.report: BackendReport | None = None
        self.text = ""
        self.task: CallTask | None = None
        self.venv_task: CallTask | None = None
        lay = QVBoxLayout(self)
        self.status = QLabel("Checking…")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.browser = QTextBrowser()
        self.browser.setFont(QFont("monospace"))
        lay.addWidget(self.browser, 1)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setVisible(False)
        lay.addWidget(self.log, 1)
        hl = QHBoxLayout()
        self.recheck_button = QPushButton("Check again")
        self.copy_button = QPushButton("Copy report")
        self.choose_button = QPushButton("Choose Python…")
        self.create_button = QPushButton("Create environment…")
        for b in (self.recheck_button, self.copy_button, self.choose_button, self.create_button):
            hl.addWidget(b)
        lay.addLayout(hl)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.recheck_button.clicked.connect(lambda: self.refresh())
        self.copy_button.clicked.connect(self.copy_report)
        self.choose_button.clicked.connect(self.choose_python)
        self.create_button.clicked.connect(self.offer_venv)
        self.resize(760, 480)

    # -- checking ----------------------------------------------------------------------------------------------
    def refresh(self, synchronous: bool = False) -> None:
        self.status.setText("Checking the backend environment (this starts its Python and imports torch)…")

        def work(_task=None):
            return settings.probe_backend(), environment_extra()

        if synchronous:
            self.show_report(*work())
            return
        if self.task is not None:
            return
        task = CallTask("eo-ssl: checking the backend environment", work)
        task.taskCompleted.connect(lambda: self._probe_done(task))
        task.taskTerminated.connect(lambda: self._probe_done(task))
        self.task = task
        QgsApplication.taskManager().addTask(task)

    def _probe_done(self, task: CallTask) -> None:
        self.task = None
        if task.result is None:
            self.status.setText(f"The check failed: {task.error}")
            return
        self.show_report(*task.result)

    def show_report(self, report: BackendReport, extra: dict[str, str]) -> None:
        self.report = report
        self.text = report_text(report, extra, settings.looked_at())
        colour = "#1a7f37" if report.ok else "#b00"
        self.status.setText(f"<b style='color:{colour}'>{'Ready' if report.ok else 'Not usable'}</b>: "
                            f"{html.escape(report.summary())}"
                            + (f"<br>{html.escape(report.hint)}" if report.hint else ""))
        self.browser.setPlainText(self.text)
        self.create_button.setEnabled(True)
        self.reportReady.emit(report)

    def copy_report(self) -> str:
        QApplication.clipboard().setText(self.text)
        self.status.setText(self.status.text() + "<br><i>Report copied to the clipboard.</i>")
        return self.text

    def choose_python(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Backend Python interpreter", "", "Python (python* *.exe);;All (*)")
        if path:
            settings.put(settings.SETTINGS_PYTHON, path)
            self.refresh()

    # -- the managed environment -------------------------------------------------------------------------------
    def venv_plan(self) -> venv_setup.Plan | None:
        base = venv_setup.find_base_python(settings.get(settings.SETTINGS_BASE_PYTHON) or None)
        if base is None:
            QMessageBox.warning(self, "eo-ssl", "No Python 3.11 or newer was found to create the environment with. "
                                "Install one (python.org or your package manager), or choose an existing backend "
                                "Python with 'Choose Python…'.")
            return None
        return venv_setup.plan(settings.managed_venv_dir(), base)

    def offer_venv(self) -> None:
        the_plan = self.venv_plan()
        if the_plan is None:
            return
        box = QMessageBox(self)
        box.setWindowTitle("Create the eo-ssl backend environment")
        box.setIcon(QMessageBox.Icon.Question)
        box.setText(f"Create a Python environment for the eo-ssl backend in<br><code>{html.escape(str(the_plan.venv))}"
                    f"</code><br>with PyTorch for <b>{the_plan.wheel_tag}</b> ({html.escape(the_plan.gpu.describe())})"
                    ". About 2–6 GB are downloaded. These commands run (no shell):")
        box.setDetailedText(the_plan.text())
        box.setInformativeText(the_plan.text())
        box.setStandardButtons(QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Ok).setText("Create")
        if box.exec() == QMessageBox.StandardButton.Ok:
            self.create_venv(the_plan)

    def create_venv(self, the_plan: venv_setup.Plan) -> None:
        self.log.setVisible(True)
        self.log.clear()
        self.create_button.setEnabled(False)
        lines: list[str] = []

        def work(task: CallTask):
            return venv_setup.run_plan(the_plan, on_line=lines.append, is_cancelled=task.isCanceled)

        task = CallTask("eo-ssl: creating the backend environment", work)

        def flush() -> None:
            while lines:
                self.log.appendPlainText(lines.pop(0))

        timer = QTimer(self)
        timer.setInterval(300)
        timer.timeout.connect(flush)
        timer.start()

        def done() -> None:
            timer.stop()
            flush()
            ok, message = task.result if task.result else (False, task.error or "failed")
            self.log.appendPlainText(("OK: " if ok else "FAILED: ") + message)
            self.venv_task = None
            self.refresh()

        task.taskCompleted.connect(done)
        task.taskTerminated.connect(done)
        self.venv_task = task
        QgsApplication.taskManager().addTask(task)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.report is None and self.task is None:
            self.refresh()
