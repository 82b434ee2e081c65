"""The backend diagnostics panel (Raster > eo-ssl > Backend diagnostics): which Python, backend, torch and device the
plugin uses, with a 'Copy report' button for bug reports and the way to the first-run panel. The check runs in a
QgsTask (it starts the backend's Python and imports torch: seconds), never on QGIS's main thread."""

from __future__ import annotations

import html
import platform

from qgis.core import Qgis
from qgis.PyQt import sip
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtGui import QFont, QIcon
from qgis.PyQt.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
)

from . import names, settings, tasks, venv_setup
from .environment import BackendReport, report_text
from .i18n import tr
from .paths import ICON, ROOT, plugin_version


def environment_extra() -> dict[str, str]:
    gpu = venv_setup.detect_gpu()
    return {"plugin version": plugin_version(), "plugin folder": str(ROOT),
            "QGIS": f"{Qgis.QGIS_VERSION} ({platform.system()} {platform.release()})",
            "QGIS Python": platform.python_version(),
            "managed venv": str(settings.managed_venv_dir()),
            "default device": settings.device(),
            "cache folder": str(settings.cache_dir()),
            "nvidia-smi": gpu.describe()}


class DiagnosticsDialog(QDialog):
    reportReady = pyqtSignal(object)  # noqa: N815

    def __init__(self, parent=None, open_setup=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr("eo-ssl backend diagnostics"))
        self.setWindowIcon(QIcon(str(ICON)))
        self.setObjectName("EoSslDiagnostics")
        self.open_setup = open_setup
        self.report: BackendReport | None = None
        self.text = ""
        self.task: tasks.CallTask | None = None
        lay = QVBoxLayout(self)
        self.status = QLabel(tr("Checking…"))
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.browser = QTextBrowser()
        self.browser.setFont(QFont("monospace"))
        lay.addWidget(self.browser, 1)
        hl = QHBoxLayout()
        self.recheck_button = QPushButton(tr("Check again"))
        self.copy_button = QPushButton(tr("Copy report"))
        self.setup_button = QPushButton(tr(names.SETUP_ACTION))
        for b in (self.recheck_button, self.copy_button, self.setup_button):
            hl.addWidget(b)
        hl.addStretch(1)
        lay.addLayout(hl)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.recheck_button.clicked.connect(lambda: self.refresh())
        self.copy_button.clicked.connect(self.copy_report)
        self.setup_button.clicked.connect(self._open_setup)
        self.resize(760, 480)

    def _open_setup(self) -> None:
        if self.open_setup is not None:
            self.open_setup()

    # -- checking ----------------------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Start the check in a task (False when one is already running); the panel stays usable meanwhile."""
        if self.task is not None:
            return False
        self.status.setText(tr("Checking the backend environment (this starts its Python and imports torch)…"))
        self.recheck_button.setEnabled(False)
        self.task = tasks.probe(self._probe_done, extra=environment_extra)
        return True

    def _probe_done(self, task: tasks.CallTask) -> None:
        if sip.isdeleted(self):
            return
        self.task = None
        self.recheck_button.setEnabled(True)
        if task.result is None:
            self.status.setText(tr("The check failed: {error}").format(error=html.escape(str(task.error))))
            return
        self.show_report(*task.result)

    def show_report(self, report: BackendReport, extra: dict[str, str]) -> None:
        self.report = report
        self.text = report_text(report, extra, settings.looked_at())
        colour = "#1a7f37" if report.ok else "#b00"
        state = tr("Ready") if report.ok else tr("Not usable")
        self.status.setText(f"<b style='color:{colour}'>{state}</b>: {html.escape(report.summary())}"
                            + (f"<br>{html.escape(report.hint)}" if report.hint else ""))
        self.browser.setPlainText(self.text)
        self.reportReady.emit(report)

    def copy_report(self) -> str:
        QApplication.clipboard().setText(self.text)
        self.status.setText(self.status.text() + "<br><i>{}</i>".format(tr("Report copied to the clipboard.")))
        return self.text

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.report is None and self.task is None:
            self.refresh()
