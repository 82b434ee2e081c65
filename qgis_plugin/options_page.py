"""The plugin's page in QGIS's Settings > Options… dialog: the backend Python, the default device and the cache
folder, with a check of the backend (in a task) and the way to the first-run panel."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

from qgis.gui import QgsFileWidget, QgsOptionsPageWidget, QgsOptionsWidgetFactory
from qgis.PyQt import sip
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
)

from . import names, settings, tasks
from .i18n import tr
from .paths import ICON

#: The subfolder of the cache that holds the dialog's chip stores.
CHIPSTORES = "chipstores"


def folder_size(path: Path) -> int:
    """Bytes in the files below ``path`` (0 when it does not exist)."""
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def empty_cache(cache: Path) -> int:
    """Remove what eo-ssl keeps in the cache (its chip stores); returns the bytes freed. Other files are left."""
    target = cache / CHIPSTORES
    freed = folder_size(target)
    if target.is_dir():
        shutil.rmtree(target)
    return freed


class EoSslOptionsPage(QgsOptionsPageWidget):
    """Settings > Options… > eo-ssl."""

    def __init__(self, parent=None, open_setup=None) -> None:
        super().__init__(parent)
        self.setObjectName("EoSslOptionsPage")
        self.open_setup = open_setup
        self.check_task: tasks.CallTask | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)

        box = QGroupBox(tr("Backend"))
        form = QFormLayout(box)
        self.python = QgsFileWidget()
        self.python.setStorageMode(QgsFileWidget.GetFile)
        self.python.setFilePath(settings.backend_python_setting() or "")
        self.python.lineEdit().setPlaceholderText(self._automatic_text())
        self.python.setToolTip(tr("The Python that runs the backend (training, prediction). Empty: the environment "
                                  "variable EO_SSL_PYTHON, else the environment eo-ssl created in your profile."))
        form.addRow(tr("Backend Python"), self.python)
        self.status = QLabel(tr("Not checked yet."))
        self.status.setWordWrap(True)
        form.addRow("", self.status)
        hl = QHBoxLayout()
        self.check_button = QPushButton(tr("Check"))
        self.check_button.setToolTip(tr("Start the backend Python and report its PyTorch and device (seconds)"))
        self.check_button.clicked.connect(self.check)
        self.setup_button = QPushButton(tr(names.SETUP_ACTION))
        self.setup_button.setToolTip(tr("Create the backend environment, or choose an existing Python"))
        self.setup_button.clicked.connect(self._open_setup)
        hl.addWidget(self.check_button)
        hl.addWidget(self.setup_button)
        hl.addStretch(1)
        form.addRow("", hl)
        lay.addWidget(box)

        box = QGroupBox(tr("Runs"))
        form = QFormLayout(box)
        self.device = QComboBox()
        self.device.setEditable(True)
        for text, value in ((tr("auto (the GPU when there is one, else the CPU)"), "auto"), (tr("CPU"), "cpu"),
                            (tr("1 GPU"), "1"), (tr("2 GPUs (data-parallel)"), "2"),
                            (tr("4 GPUs (data-parallel)"), "4")):
            self.device.addItem(text, value)
        self.set_device(settings.device())
        self.device.setToolTip(tr("The default of every run (the Devices parameter 'auto' of the algorithms and the "
                                  "dialog's device). Also accepted: cpu:N for N CPU processes, or a number of GPUs."))
        form.addRow(tr("Device"), self.device)
        self.cache = QgsFileWidget()
        self.cache.setStorageMode(QgsFileWidget.GetDirectory)
        self.cache.setFilePath(settings.get(settings.SETTINGS_CACHE))
        self.cache.lineEdit().setPlaceholderText(str(settings.default_cache_dir()))
        self.cache.setToolTip(tr("Where eo-ssl keeps what it can rebuild: the chip stores the dialog prepares, "
                                 "reused while their layers, area and period do not change. They can be large: "
                                 "put the folder on a disk with room."))
        form.addRow(tr("Cache folder"), self.cache)
        hl = QHBoxLayout()
        self.cache_size = QLabel("")
        self.empty_button = QPushButton(tr("Empty the cache…"))
        self.empty_button.clicked.connect(self.ask_empty_cache)
        hl.addWidget(self.cache_size, 1)
        hl.addWidget(self.empty_button)
        form.addRow("", hl)
        lay.addWidget(box)
        lay.addStretch(1)
        self.update_cache_size()

    # -- helpers -----------------------------------------------------------------------------------------------
    @staticmethod
    def _automatic_text() -> str:
        found = settings.backend_python()
        if found is None:
            return tr("none found: use '{setup}'").format(setup=tr(names.SETUP_ACTION))
        return tr("automatic: {path}").format(path=found.path)

    def set_device(self, value: str) -> None:
        index = self.device.findData(value)
        if index >= 0:
            self.device.setCurrentIndex(index)
        else:
            self.device.setEditText(value)

    def device_value(self) -> str:
        text = self.device.currentText().strip()
        index = self.device.findText(text)
        value = self.device.itemData(index) if index >= 0 else text
        return str(value or "auto")

    def cache_path(self) -> Path:
        text = self.cache.filePath().strip()
        return Path(text).expanduser() if text else settings.default_cache_dir()

    def update_cache_size(self) -> None:
        size = folder_size(self.cache_path() / CHIPSTORES)
        self.cache_size.setText(tr("{size} of chip stores in {path}").format(size=human_size(size),
                                                                            path=self.cache_path()))

    def _open_setup(self) -> None:
        if self.open_setup is not None:
            self.open_setup()

    # -- checking ----------------------------------------------------------------------------------------------
    def check(self) -> bool:
        if self.check_task is not None:
            return False
        python = self.python.filePath().strip() or None
        self.status.setText(tr("Checking (the backend Python imports PyTorch: a few seconds)…"))
        self.check_button.setEnabled(False)
        self.check_task = tasks.probe(self._checked, python=python)
        return True

    def _checked(self, task: tasks.CallTask) -> None:
        if sip.isdeleted(self):  # the Options dialog was closed meanwhile
            return
        self.check_task = None
        self.check_button.setEnabled(True)
        report = task.result
        if report is None:
            self.status.setText(tr("The check failed: {error}").format(error=task.error))
        elif report.ok:
            self.status.setText("<span style='color:#1a7f37'>{}</span>".format(html.escape(
                tr("Ready: {summary}").format(summary=report.summary()))))
        else:
            self.status.setText("<span style='color:#b00'>{}</span><br>{}".format(
                html.escape(tr("Not usable: {problem}").format(problem=report.error)), html.escape(report.hint or "")))

    # -- the cache ---------------------------------------------------------------------------------------------
    def ask_empty_cache(self) -> None:
        cache = self.cache_path()
        answer = QMessageBox.question(
            self, tr("Empty the eo-ssl cache"),
            tr("Delete the chip stores in {path}? The dialog prepares them again when it needs them.").format(
                path=cache / CHIPSTORES))
        if answer == QMessageBox.StandardButton.Yes:
            freed = empty_cache(cache)
            self.cache_size.setText(tr("{size} freed.").format(size=human_size(freed)))

    # -- QgsOptionsPageWidget ----------------------------------------------------------------------------------
    def apply(self) -> None:
        settings.put(settings.SETTINGS_PYTHON, self.python.filePath().strip())
        device = self.device_value()
        settings.put(settings.SETTINGS_DEVICE, device if settings.DEVICE_PATTERN.match(device) else "auto")
        settings.put(settings.SETTINGS_CACHE, self.cache.filePath().strip())


class EoSslOptionsFactory(QgsOptionsWidgetFactory):
    """Registered with ``iface.registerOptionsWidgetFactory`` by the plugin."""

    def __init__(self, open_setup=None) -> None:
        super().__init__(names.OPTIONS_PAGE, QIcon(str(ICON)))
        self.open_setup = open_setup

    def createWidget(self, parent):  # noqa: N802 - QGIS API
        return EoSslOptionsPage(parent, self.open_setup)
