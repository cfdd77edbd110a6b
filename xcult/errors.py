"""The exception hierarchy. Errors raised in Rust arrive as these classes."""

from __future__ import annotations


class XcultError(Exception):
    """Base of every xcult error."""


class InputError(XcultError, ValueError):
    """Bad input data; `path` and `line` (1-based; a row for Parquet) name the place."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        super().__init__(message)
        self.path = path
        self.line = line


class ConfigError(XcultError, ValueError):
    """A configuration value that cannot be used; `key` is the dotted key."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class TokenizerError(XcultError, ValueError):
    """A tokenizer that is missing or cannot be loaded or used."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class PathError(XcultError, OSError):
    """An operating-system error on a named path."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        return self.args[0]


class MissingPathError(PathError, FileNotFoundError):
    """A file or directory that does not exist."""


class UnwritablePathError(PathError, PermissionError):
    """A path that cannot be written."""


class StaleOutputError(XcultError):
    """Expensive output (a trained model) was built from inputs or settings that have
    since changed; the message says what changed and how to rebuild it."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class TrainingFailed(XcultError, RuntimeError):
    """A training process exited with an error; `path` is the run's directory."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class RunLockedError(XcultError):
    """Another xcult process is writing the same run directory; `path` is the directory."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class ExecutorError(XcultError, RuntimeError):
    """A cluster executor (Slurm, Ray) could not run a stage, or its job ended without
    building what it was given; `path` is where its logs are."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class EngineFailed(XcultError, RuntimeError):
    """An external engine run as a process (infini-gram's suffix-array builder) failed;
    `path` is what it was building."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path
