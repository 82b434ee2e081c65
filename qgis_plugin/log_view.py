"""A read-only log that follows: the dialog's job log and the first-run panel's pip log.

Qt's own ``appendPlainText`` scrolls only when the view is visible and already at its last line, so a log filled
while its window was hidden, or after a ``clear``, stays at its first lines while the run goes on. Here the view
follows the end unless the user scrolled up to read (then it stays where the user is), :meth:`show_end` jumps to
the end (a finished or failed run: the error is in sight), and the keyboard moves in it (Ctrl+End, Page Up/Down).
"""

from __future__ import annotations

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QTextCursor
from qgis.PyQt.QtWidgets import QPlainTextEdit


class FollowingLog(QPlainTextEdit):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        # read-only views take no keys by default: Ctrl+End, Page Down and the arrows move in the log
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self._follow = True
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self._appending = False

    def _at_end(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 1

    def _on_scrolled(self, _value: int) -> None:
        if not self._appending:  # the user scrolled: follow again once back at the end
            self._follow = self._at_end()

    def append_line(self, text: str) -> None:
        """Append a line; the view follows unless the user scrolled up."""
        self._appending = True
        try:
            self.appendPlainText(text)
        finally:
            self._appending = False
        if self._follow:
            self.show_end()

    def show_end(self) -> None:
        """The last line in sight (and the cursor there, so Ctrl+Home/End and the arrows start from it)."""
        self._appending = True
        try:
            cursor = self.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            self.setTextCursor(cursor)
            bar = self.verticalScrollBar()
            bar.setValue(bar.maximum())
        finally:
            self._appending = False
        self._follow = True

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API: filled while hidden, shown at its end
        super().showEvent(event)
        if self._follow:
            self.show_end()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API: a resized, following log keeps its end in sight
        super().resizeEvent(event)
        if self._follow:
            self.show_end()

    def clear(self) -> None:  # noqa: D102 - a new run starts at the top and follows
        super().clear()
        self._follow = True

    def first_visible_line(self) -> int:
        """The block number at the top of the view (for tests: where the user looks)."""
        return self.firstVisibleBlock().blockNumber()
