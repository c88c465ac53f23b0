"""Errors the user can cause and fix: missing folders, malformed CSV rows, unreadable images, wrong models.

Every such problem raises :class:`UserFacingError` (or a subclass) with a message that names the file (and the
line where there is one) and says what was expected. The command line turns these into one line on stderr and
a non-zero exit status, never a traceback.
"""

from __future__ import annotations

from pathlib import Path


class UserFacingError(Exception):
    """A problem with the user's input, reported as one line: ``<path>[:<line>]: <problem>``."""

    def __init__(self, problem: str, path: str | Path | None = None, line: int | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.path or ""
        if self.path and self.line is not None:
            where = f"{self.path}:{self.line}"
        return f"{where}: {self.problem}" if where else self.problem


class DataError(UserFacingError):
    """A dataset folder, index CSV or image is missing, malformed or unreadable."""


class ModelFileError(UserFacingError):
    """A model file is missing, not a Keras model, or not a model this project can explain."""
