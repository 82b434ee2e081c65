"""Expected failures: bad input the user can fix. Each has a stable code, a message and a hint."""

from __future__ import annotations


class EoSslError(Exception):
    """A bad input or environment, reported to the user as an ``error`` event and exit code 2.

    ``code`` is stable (the plugin and tests match on it); ``message`` says what is wrong; ``hint`` says
    what to do about it.
    """

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}" + (f" Hint: {self.hint}" if self.hint else "")
