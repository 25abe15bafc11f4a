"""The package's exceptions: every one says what went wrong and how to fix it."""

from __future__ import annotations

from pathlib import Path


class QAError(Exception):
    """Base class: the CLI and app turn these into one clean line."""


class ConfigError(QAError):
    """A setting, path or model that cannot be used."""


class CorpusError(QAError):
    """A FAQ or safety file that cannot be read; names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


class IndexBundleError(QAError):
    """An index bundle that is missing, damaged or stale (callers usually rebuild)."""
