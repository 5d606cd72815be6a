"""The crontab line that runs the build on the configured schedule, and putting it in (or
taking it out of) a user's crontab through the `crontab` program.

The line is self-contained, so that cron's bare environment (no PATH of ours, the home
folder as working folder) runs exactly what `syndicate cron` printed:

    */15 * * * * cd /srv/news && /srv/news/.venv/bin/syndicate build -c /srv/news/config.yaml \
        >>/srv/news/.syndicate/syndicate.log 2>&1 # syndicate cron: /srv/news/config.yaml

(one line in the crontab; wrapped here). It ends with a marker comment naming the config
(the shell ignores it), which is how `--install` finds its own line again: re-installing
replaces that line where it stands, `--remove` deletes it, and every other line of the
crontab is kept byte for byte. Lines for other configs have other markers, so one user
can run several sites.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from syndicate.errors import ConfigError, ConfigProblem, CrontabError
from syndicate.model import Config
from syndicate.schedule import effective

MARKER = "# syndicate cron: "
EVERY_MINUTE = "* * * * *"
LOG_NAME = "syndicate.log"  # in the cache folder, unless --log says otherwise


@dataclass(frozen=True, slots=True)
class Plan:
    """When the crontab line runs, and what it runs."""

    schedule: str  # the line's five cron fields
    due: bool  # run `build --due` (only the channels that came due) rather than `build`


def plan(config: Config) -> Plan:
    """The schedule of the crontab line: the one schedule every channel shares, else
    every minute with `build --due`.

    Why not the "finest" of several schedules: cron expressions have no such order
    (neither `0 6 * * *` nor `30 * * * 1` is finer than the other), so the line would
    need a schedule that runs at every moment any channel's schedule does, a superset
    of their union. A field-wise union or a gcd of minute steps is such a superset only
    in the zone where it is computed, and the two clocks differ: cron runs a line in the
    cron daemon's local zone (Debian's cron has no CRON_TZ), while `--due` evaluates
    schedules in UTC. Zones such as +05:30 or +05:45 even shift minute patterns, so a
    line at `*/30` built for UTC minutes would miss runs there. Every minute is the one
    line that catches every channel's runs, within a minute, in any zone; a `--due` run
    with nothing due reads the config and the cache and stops, without scanning the
    archive. Channels with no schedule at all are always due, so with such a mix they
    are rebuilt on every run (give them a schedule, or set site.schedule).

    With one schedule for every channel (the common case: only site.schedule), the
    line uses it as written and runs a plain `build`: cron's own clock decides, as it
    would for a line written by hand."""
    schedules = {_normal(effective(config.site, c)) for c in config.channels} or {
        _normal(config.site.schedule)}
    if schedules == {None}:
        raise ConfigError([ConfigProblem(
            _display(config.path), 0, "site.schedule",
            "`syndicate cron` needs a schedule: set site.schedule (or a channel's schedule) "
            "to a cron expression such as '*/15 * * * *'")])
    if len(schedules) == 1:
        [schedule] = schedules
        assert schedule is not None
        return Plan(schedule, due=False)
    return Plan(EVERY_MINUTE, due=True)


def default_log(config: Config) -> Path:
    return config.site.cache / LOG_NAME


def command(argv0: str, python: str) -> tuple[str, ...]:
    """How cron should start this syndicate, by absolute path: the `syndicate` script
    that is running, or the one installed beside this interpreter (same environment),
    else `python -m syndicate` with this very interpreter. Paths are made absolute but
    symlinks are kept: a virtualenv's bin/python is a symlink whose location selects
    the environment."""
    if Path(argv0).name == "syndicate":
        found = argv0 if os.sep in argv0 else shutil.which(argv0)
        if found:
            return (os.path.abspath(found),)
    python = python or shutil.which("python3") or "python3"  # sys.executable may be ""
    beside = Path(python).parent / "syndicate"
    if beside.is_file() and os.access(beside, os.X_OK):
        return (os.path.abspath(beside),)
    return (os.path.abspath(python), "-m", "syndicate")


def marker(config: Config) -> str:
    return _escape(MARKER + str(config.path))


def line(config: Config, how: Plan, start: Sequence[str], log: Path) -> str:
    """The crontab line (without its newline): `cd` to the config's folder, run the build
    with absolute paths, append stdout and stderr to `log`."""
    args = [*start, "build", *(["--due"] if how.due else []), "-c", str(config.path)]
    run = (f"cd {shlex.quote(str(config.path.parent))} && {shlex.join(args)} "
           f">>{shlex.quote(str(log))} 2>&1")
    return f"{how.schedule} {_escape(run)} {marker(config)}"


# --- the user's crontab ---------------------------------------------------------------------


def install(text_line: str, mark: str, user: str | None = None) -> bool:
    """Put the line in the crontab, replacing the one with the same marker. Returns
    whether the crontab changed."""
    before = read(user)
    after = with_line(before, text_line.encode(), mark.encode())
    if after != before:
        write(after, user)
    return after != before


def remove(mark: str, user: str | None = None) -> bool:
    """Take the marked line out of the crontab. Returns whether it was there."""
    before = read(user)
    after = without_line(before, mark.encode())
    if after != before:
        write(after, user)
    return after != before


def with_line(text: bytes, new: bytes, mark: bytes) -> bytes:
    """`text` with `new` in place of the first line ending in `mark` (further ones are
    dropped), or appended. Every other byte is kept."""
    lines = text.splitlines(keepends=True)
    out: list[bytes] = []
    placed = False
    for old in lines:
        if _marked(old, mark):
            if not placed:
                out.append(new + b"\n")
                placed = True
            continue
        out.append(old)
    if not placed:
        if out and not out[-1].endswith(b"\n"):
            out[-1] += b"\n"  # cron refuses a last line without its newline anyway
        out.append(new + b"\n")
    return b"".join(out)


def without_line(text: bytes, mark: bytes) -> bytes:
    return b"".join(old for old in text.splitlines(keepends=True) if not _marked(old, mark))


def read(user: str | None = None) -> bytes:
    """The crontab as `crontab -l` prints it; empty when the user has none."""
    proc = _crontab([*_as(user), "-l"], b"")
    if proc.returncode == 0:
        if b"\\r" in proc.stdout:
            # Debian's crontab -l shows a carriage return byte as the two characters \r, so
            # writing the listing back would change that line: better not touch it at all.
            raise CrontabError("the crontab holds a carriage return (`crontab -l` shows \\r), "
                               "which cannot be written back unchanged: remove it with "
                               "`crontab -e`, or add the line that `syndicate cron` prints "
                               "by hand")
        return proc.stdout
    if b"no crontab for" in proc.stderr:
        return b""
    raise CrontabError(f"`crontab -l` failed: {_said(proc)}")


def write(text: bytes, user: str | None = None) -> None:
    """Replace the crontab; an empty one is removed rather than installed empty."""
    proc = _crontab([*_as(user), "-r"] if not text else [*_as(user), "-"], text)
    if proc.returncode != 0 and not (not text and b"no crontab for" in proc.stderr):
        raise CrontabError(f"`crontab` refused the new crontab: {_said(proc)}")


def _crontab(args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    program = shutil.which("crontab")
    if not program:
        raise CrontabError("the `crontab` program was not found: install cron (Debian and "
                           "Ubuntu: apt-get install cron), or add the line that `syndicate "
                           "cron` prints to your scheduler by hand")
    try:
        return subprocess.run([program, *args], input=data, capture_output=True, timeout=60,
                              env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CrontabError(f"cannot run {program}: {e}") from e


def _as(user: str | None) -> list[str]:
    return ["-u", user] if user else []


def _said(proc: subprocess.CompletedProcess[bytes]) -> str:
    said = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
    return " ".join(said.split())


def _marked(text_line: bytes, mark: bytes) -> bool:
    return text_line.rstrip(b"\r\n").endswith(mark)


def _normal(schedule: str | None) -> str | None:
    return " ".join(schedule.split()) if schedule else None


def _escape(text: str) -> str:
    """Text as cron must see it: cron turns an unescaped % into a newline (the rest of
    the line becomes the command's stdin). A newline cannot be written at all, and a
    backslash is read differently by different crons, so paths holding them are refused."""
    if any(c in text for c in "\n\r\\"):
        raise CrontabError(f"cannot be written in a crontab line (newline or backslash): {text!r}")
    return text.replace("%", "\\%")


def _display(path: Path) -> str:
    return path.name if path.parent == Path.cwd() else str(path)
