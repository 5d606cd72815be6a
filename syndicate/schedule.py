"""Cron schedules: when a channel is due, and how often readers should come back.

A schedule is a five-field cron expression (`*/15 * * * *`), from `site.schedule` or a
channel's own `schedule`, which wins. Everything here is evaluated in UTC on aware
datetimes, whatever the machine's TZ: a given config and clock always give the same
answer, and UTC has no daylight-saving jumps (no skipped or doubled runs). The clock
is always passed in.

- due-ness (`build --due`): a channel is due when a run of its schedule falls after its
  last build and at or before `now`; a channel never built, or with no schedule at all,
  is always due;
- poll hints (RSS `<ttl>` and the Syndication module): derived from the interval
  between runs. Irregular schedules (`0 9,17 * * 1-5`) use the *smallest* interval
  seen over a fixed sample of runs, so readers are never told to wait longer than the
  feed may take to change.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from syndicate.model import Channel, Config, Site

Period = Literal["hourly", "daily", "weekly", "monthly", "yearly"]

# Poll hints sample the runs that follow this fixed instant (never the clock, so feeds
# stay byte-identical from run to run): at most SAMPLE_RUNS runs within SAMPLE_SPAN.
# Two years from 2023 hold a February of 28 days and one of 29, every weekday on every
# day of the month, and month ends of every length.
SAMPLE_START = datetime(2022, 12, 31, 23, 59, tzinfo=UTC)  # so that 2023-01-01 00:00 counts
SAMPLE_SPAN = timedelta(days=731)
SAMPLE_RUNS = 1500

# One field of a standard cron expression: a list of `*` or a value or range, each with
# an optional /step; values are numbers or three-letter month and weekday names.
_VALUE = r"(?:\d+|[a-z]{3})"
_ITEM = rf"(?:\*|{_VALUE}(?:-{_VALUE})?)(?:/\d+)?"
_FIELD = re.compile(rf"^{_ITEM}(?:,{_ITEM})*$", re.IGNORECASE)

# Units of the Syndication module, in minutes. Months and years vary in length: their
# shortest length is used, so that a schedule running on the 1st of each month (28 days
# apart at least) reads as "monthly, 1", not as "weekly, 0.25".
PERIODS: tuple[tuple[Period, int], ...] = (
    ("hourly", 60),
    ("daily", 24 * 60),
    ("weekly", 7 * 24 * 60),
    ("monthly", 28 * 24 * 60),
    ("yearly", 365 * 24 * 60),
)
# Units that always have this length, so that "every 45 minutes" may be said exactly
# as "daily, 32" rather than rounded to "hourly, 1".
_FIXED = PERIODS[:3]


@dataclass(frozen=True, slots=True)
class PollHint:
    """How often readers should fetch a feed built on a schedule."""

    ttl: int  # minutes: RSS <ttl>, the smallest interval between two runs
    period: Period  # sy:updatePeriod
    frequency: int  # sy:updateFrequency: runs per period (at least 1)


def check(expression: str) -> str | None:
    """Why a schedule is unusable, or None. Only standard cron syntax is taken (numbers,
    month and weekday names, `*`, `,`, `-`, `/`): the expression goes into a crontab
    as written, and cron does not know croniter's extensions (`L`, `#`, `?`, `R`, `H`,
    a sixth field for seconds). A schedule must also run at least once."""
    from croniter import croniter  # type: ignore[import-untyped]

    fields = expression.split()
    if len(fields) != 5 or not all(_FIELD.match(f) for f in fields) or not croniter.is_valid(expression):
        return f"expected a five-field cron expression such as '*/15 * * * *', got {expression!r}"
    if next_run(expression, SAMPLE_START) is None:
        return f"the cron expression {expression!r} never runs"
    return None


def effective(site: Site, channel: Channel) -> str | None:
    """The schedule a channel is built on: its own, else the site's, else none."""
    return channel.schedule or site.schedule


def next_run(expression: str, after: datetime) -> datetime | None:
    """The schedule's first run strictly after `after`, as an aware UTC datetime; None when
    it never runs again (`0 0 30 2 *` passes croniter's syntax check but never fires)."""
    runs = _runs(expression, after)
    return next(runs, None)


def is_due(expression: str | None, last_built: datetime | None, now: datetime) -> bool:
    """Whether a run of the schedule falls in (last_built, now]. Never built, or no
    schedule: due. A build that finishes in the same minute as its run is not due again
    until the next run, however many times cron calls."""
    if expression is None or last_built is None:
        return True
    upcoming = next_run(expression, last_built)
    return upcoming is not None and upcoming <= now.astimezone(UTC)


def due_channels(config: Config, last_builds: Mapping[str, datetime],
                 now: datetime) -> tuple[Channel, ...]:
    """The channels to build in a `build --due` run, in config order."""
    return tuple(c for c in config.channels
                 if is_due(effective(config.site, c), last_builds.get(c.id), now))


@functools.lru_cache(maxsize=128)
def poll_hint(expression: str | None) -> PollHint | None:
    """RSS <ttl> and sy:updatePeriod/updateFrequency for a schedule; None without one.

    `*/15 * * * *` → ttl 15, hourly 4; `0 * * * *` → 60, hourly 1; `0 6 * * *` → 1440,
    daily 1; `0 0 1 * *` → 40320 (28 days), monthly 1. The interval is the smallest gap
    between consecutive runs in the sample. It becomes the first of hourly, daily,
    weekly that it divides evenly (45 minutes: daily 32); otherwise the shortest unit
    at least as long as the gap, with the whole number of gaps that fit in it."""
    if expression is None:
        return None
    gap: int | None = None
    previous: datetime | None = None
    for count, run in enumerate(_runs(expression, SAMPLE_START)):
        if count >= SAMPLE_RUNS or (run > SAMPLE_START + SAMPLE_SPAN and count >= 2):
            break
        if previous is not None:
            minutes = int((run - previous).total_seconds()) // 60
            gap = minutes if gap is None else min(gap, minutes)
            if gap == 1:  # cron cannot run more often
                break
        previous = run
    if gap is None:  # fewer than two runs ever: nothing sensible to tell readers
        return None
    for period, length in _FIXED:
        if length % gap == 0:
            return PollHint(gap, period, length // gap)
    period, length = next(((p, n) for p, n in PERIODS if n >= gap), PERIODS[-1])
    return PollHint(gap, period, max(1, length // gap))


def _runs(expression: str, after: datetime) -> Iterator[datetime]:
    """The schedule's runs after `after`, evaluated in UTC."""
    from croniter import CroniterBadDateError, croniter

    iterator: Any = croniter(expression, after.astimezone(UTC))
    while True:
        try:
            run = cast(datetime, iterator.get_next(datetime))
        except CroniterBadDateError:  # no run within croniter's search horizon
            return
        yield run.astimezone(UTC)
