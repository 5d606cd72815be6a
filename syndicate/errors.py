"""One error family. Each subclass carries what failed, so the CLI can name it.

Foreign exceptions (yaml, lxml, OSError, feedgen's bare ValueError) are re-raised
as one of these at the boundary where they happen, with the cause chained.

An error raised in a worker process reaches the main process pickled (workers.py): each
one that carries fields says how to make it again (__reduce__), since an exception is
otherwise unpickled by calling its class with its message alone.
"""

from __future__ import annotations

from dataclasses import dataclass


class SyndicateError(Exception):
    """Root of every error syndicate raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a config file, located as precisely as the YAML allows."""

    file: str
    line: int  # 1-based; 0 when the problem is not tied to a line
    key: str  # dotted path, e.g. "channels.world.limit"; "" for the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(SyndicateError):
    """The configuration is unusable. Holds every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[object, ...]]:
        return type(self), (list(self.problems),)


class ArticleError(SyndicateError):
    """One file cannot become an article. The build skips it and names it with `reason`."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self) -> tuple[type[ArticleError], tuple[object, ...]]:
        return type(self), (self.path, self.reason)


class RenderError(SyndicateError):
    """A feed could not be rendered (the renderer refused the data)."""

    def __init__(self, channel: str, fmt: str, reason: str) -> None:
        self.channel = channel
        self.fmt = fmt
        self.reason = reason
        super().__init__(f"channel {channel!r} ({fmt}): {reason}")

    def __reduce__(self) -> tuple[type[RenderError], tuple[object, ...]]:
        return type(self), (self.channel, self.fmt, self.reason)


class OutputError(SyndicateError):
    """A file could not be written, or writing it would be unsafe."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self) -> tuple[type[OutputError], tuple[object, ...]]:
        return type(self), (self.path, self.reason)


class LockedError(SyndicateError):
    """Another build holds the lock on this output."""


class CrontabError(SyndicateError):
    """The user's crontab could not be read or changed (or `crontab` is missing)."""
