"""Schedules: cron expressions in the config, due-ness in UTC (`build --due`), and the RSS
<ttl> / Syndication module hints readers get from them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.etree
import pytest

from syndicate import render
from syndicate.build import build
from syndicate.config import load_config
from syndicate.errors import ConfigError
from syndicate.model import Config
from syndicate.schedule import PollHint, check, due_channels, effective, is_due, next_run, poll_hint
from tests.conftest import make_articles, read_feed, read_json_feed, run_cli

SY = "http://purl.org/rss/1.0/modules/syndication/"
CHANNEL = {"title": "All", "link": "https://cn.nytimes.com/"}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        microsecond: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


# --- what the config accepts ---------------------------------------------------------------


@pytest.mark.parametrize("expression", [
    "*/15 * * * *", "0 * * * *", "0 6 * * *", "30 9-17/2 * jan-mar mon-fri", "0 0 1,15 * *",
    "0 0 * * 7", "0 0 29 2 *",
])
def test_standard_cron_expressions_are_accepted(expression: str) -> None:
    assert check(expression) is None


@pytest.mark.parametrize("expression", [
    "every fifteen minutes", "61 * * * *", "* * * *", "0 0 1 1 * 2030", "@hourly",
    # croniter's extensions, which cron itself would not read from the crontab line
    "0 0 L * *", "0 0 * * 5#3", "0 0 ? * *", "R * * * *", "H * * * *",
])
def test_anything_else_is_refused(expression: str) -> None:
    assert "five-field cron expression" in (check(expression) or "")


def test_a_schedule_that_never_runs_is_a_located_config_error(
        site: Callable[..., Path]) -> None:
    config = site({}, {"all": {**CHANNEL, "schedule": "0 0 30 2 *"}})
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    [problem] = caught.value.problems
    assert problem.key == "channels.all.schedule" and problem.line > 0
    assert "never runs" in problem.message


def test_a_channel_schedule_wins_over_the_site_schedule(site: Callable[..., Path]) -> None:
    config = load_config(site({}, {"own": {**CHANNEL, "schedule": "0 6 * * *"}, "plain": CHANNEL},
                              schedule="*/15 * * * *"))
    own, plain = config.channels
    assert effective(config.site, own) == "0 6 * * *"
    assert effective(config.site, plain) == "*/15 * * * *"


# --- due-ness, in UTC ------------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "after", "expected"), [
    ("0 * * * *", utc(2024, 5, 16, 10, 59, 30), utc(2024, 5, 16, 11, 0)),  # hour
    ("0 0 * * *", utc(2024, 5, 16, 23, 59), utc(2024, 5, 17, 0, 0)),  # day
    ("0 0 1 * *", utc(2024, 1, 31, 12), utc(2024, 2, 1)),  # month
    ("0 0 1 * *", utc(2024, 2, 29, 12), utc(2024, 3, 1)),  # leap-year month end
    ("0 0 31 * *", utc(2024, 4, 1), utc(2024, 5, 31)),  # a 30-day month has no 31st
    ("*/15 * * * *", utc(2024, 12, 31, 23, 59, 59), utc(2025, 1, 1, 0, 0)),  # year end
    ("0 0 1 1 *", utc(2024, 1, 1, 0, 0), utc(2025, 1, 1)),  # strictly after
    ("*/15 * * * *", utc(2024, 5, 16, 12, 15, 0, 800_000), utc(2024, 5, 16, 12, 30)),
])
def test_next_run_crosses_boundaries(expression: str, after: datetime, expected: datetime) -> None:
    found = next_run(expression, after)
    assert found == expected and found is not None and found.utcoffset() == timedelta(0)


def test_due_means_a_run_fell_after_the_last_build_and_not_after_now() -> None:
    last = utc(2024, 5, 16, 12, 15, 0, 800_000)  # built by the 12:15 run, a little late
    assert not is_due("*/15 * * * *", last, utc(2024, 5, 16, 12, 16))
    assert not is_due("*/15 * * * *", last, utc(2024, 5, 16, 12, 29, 59, 999_999))
    assert is_due("*/15 * * * *", last, utc(2024, 5, 16, 12, 30))
    assert is_due("*/15 * * * *", last, utc(2024, 5, 17, 3, 0))  # many runs missed: once
    # across the year end and the month end, at the minute
    assert not is_due("0 0 1 * *", utc(2024, 12, 1, 0, 0, 5), utc(2024, 12, 31, 23, 59, 59))
    assert is_due("0 0 1 * *", utc(2024, 12, 1, 0, 0, 5), utc(2025, 1, 1))


def test_never_built_or_unscheduled_channels_are_always_due() -> None:
    now = utc(2024, 5, 16, 12, 1)
    assert is_due("0 0 1 1 *", None, now)
    assert is_due(None, now, now)
    assert is_due(None, None, now)


def test_a_clock_in_another_zone_is_the_same_instant() -> None:
    last = utc(2024, 5, 16, 5, 30)
    shanghai = ZoneInfo("Asia/Shanghai")
    assert not is_due("0 6 * * *", last, datetime(2024, 5, 16, 13, 59, tzinfo=shanghai))  # 05:59Z
    assert is_due("0 6 * * *", last, datetime(2024, 5, 16, 14, 0, tzinfo=shanghai))  # 06:00Z
    assert next_run("0 6 * * *", last.astimezone(shanghai)) == utc(2024, 5, 16, 6)


def test_runs_are_evaluated_in_utc_whatever_tz_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """No daylight saving: a daily run over New York's 2024 spring-forward night is still
    exactly 24 hours after the one before, and TZ changes nothing."""
    expected = [utc(2024, 3, 9, 2, 30), utc(2024, 3, 10, 2, 30), utc(2024, 3, 11, 2, 30)]
    for zone in ("America/New_York", "Asia/Kolkata", "Pacific/Chatham", "UTC"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        runs = [next_run("30 2 * * *", utc(2024, 3, 8, 12))]
        while len(runs) < 3:
            last = runs[-1]
            assert last is not None
            runs.append(next_run("30 2 * * *", last))
        assert runs == expected, zone
        assert poll_hint.__wrapped__("30 2 * * *") == PollHint(1440, "daily", 1)
    monkeypatch.delenv("TZ")
    time.tzset()


def test_a_process_with_another_tz_agrees() -> None:
    code = ("from datetime import UTC, datetime; from syndicate.schedule import next_run, "
            "poll_hint; print(next_run('0 6 * * *', datetime(2024, 10, 27, 0, 30, tzinfo=UTC)), "
            "poll_hint('0 6 * * *'))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "TZ": zone}, check=True).stdout
               for zone in ("Europe/London", "Australia/Lord_Howe", "UTC")}
    assert outputs == {"2024-10-27 06:00:00+00:00 PollHint(ttl=1440, period='daily', frequency=1)\n"}


def test_due_channels_use_each_channels_effective_schedule(site: Callable[..., Path]) -> None:
    config = load_config(site({}, {
        "often": {**CHANNEL, "schedule": "*/5 * * * *"},
        "site": CHANNEL,  # the site's */30
        "new": {**CHANNEL, "schedule": "0 0 1 1 *"},
    }, schedule="*/30 * * * *"))
    last = {"often": utc(2024, 5, 16, 12, 0, 2), "site": utc(2024, 5, 16, 12, 0, 2)}
    ids = [c.id for c in due_channels(config, last, utc(2024, 5, 16, 12, 5))]
    assert ids == ["often", "new"]  # "new" was never built
    ids = [c.id for c in due_channels(config, last, utc(2024, 5, 16, 12, 30))]
    assert ids == ["often", "site", "new"]


# --- poll hints ------------------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "hint"), [
    ("*/5 * * * *", PollHint(5, "hourly", 12)),
    ("*/15 * * * *", PollHint(15, "hourly", 4)),
    ("0 * * * *", PollHint(60, "hourly", 1)),
    ("17 * * * *", PollHint(60, "hourly", 1)),
    ("0 */2 * * *", PollHint(120, "daily", 12)),
    ("0 6 * * *", PollHint(1440, "daily", 1)),
    ("0 0 * * 1", PollHint(7 * 1440, "weekly", 1)),
    ("0 0 1 * *", PollHint(28 * 1440, "monthly", 1)),  # February is the shortest gap
    ("0 0 1,15 * *", PollHint(14 * 1440, "monthly", 2)),
    ("0 0 1 */3 *", PollHint(90 * 1440, "yearly", 4)),
    ("0 0 1 1 *", PollHint(365 * 1440, "yearly", 1)),
    # irregular: the smallest gap between two runs
    ("0,45 * * * *", PollHint(15, "hourly", 4)),
    ("0 9,17 * * 1-5", PollHint(8 * 60, "daily", 3)),
    ("0 0,23 * * *", PollHint(60, "hourly", 1)),  # 23:00 → 00:00 the next day
    ("*/45 * * * *", PollHint(15, "hourly", 4)),  # :00 and :45, so :45 → :00
    ("0 0 * * *", PollHint(1440, "daily", 1)),
])
def test_poll_hints(expression: str, hint: PollHint) -> None:
    assert poll_hint(expression) == hint


def test_no_schedule_no_hint() -> None:
    assert poll_hint(None) is None


# --- feeds -----------------------------------------------------------------------------------


def _scheduled_site(site: Callable[..., Path], tmp_path: Path) -> Path:
    config = site({}, {
        "minutes": {**CHANNEL, "schedule": "*/5 * * * *"},
        "hourly": CHANNEL,  # the site's schedule
        "daily": {**CHANNEL, "schedule": "0 6 * * *"},
    }, schedule="0 * * * *")
    make_articles(tmp_path / "articles", 3)
    return config


def _hints(rss: Path) -> tuple[str | None, str | None, str | None]:
    channel = lxml.etree.parse(str(rss)).getroot().find("channel")
    assert channel is not None
    return (channel.findtext("ttl"), channel.findtext(f"{{{SY}}}updatePeriod"),
            channel.findtext(f"{{{SY}}}updateFrequency"))


def test_rss_tells_readers_the_schedule(site: Callable[..., Path], tmp_path: Path) -> None:
    config = _scheduled_site(site, tmp_path)
    assert run_cli("build", "-c", str(config)).code == 0
    feeds = tmp_path / "feeds"
    assert _hints(feeds / "minutes.xml") == ("5", "hourly", "12")
    assert _hints(feeds / "hourly.xml") == ("60", "hourly", "1")
    assert _hints(feeds / "daily.xml") == ("1440", "daily", "1")
    data = (feeds / "minutes.xml").read_bytes()
    assert b'<rss xmlns:' in data and b' xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"' \
        in data.split(b"\n")[1]  # declared once, on the root
    parsed = read_feed(feeds / "minutes.xml")
    assert parsed.feed.ttl == "5" and parsed.feed.sy_updateperiod == "hourly"
    assert parsed.feed.sy_updatefrequency == "12"
    for name in ("minutes.atom", "minutes.json"):  # neither format defines such hints
        text = (feeds / name).read_text(encoding="utf-8")
        assert "ttl" not in text and "syndication" not in text and "updatePeriod" not in text
    assert read_json_feed(feeds / "minutes.json")["items"]


def test_feeds_without_a_schedule_carry_no_hints(site: Callable[..., Path], tmp_path: Path) -> None:
    config = site({})
    make_articles(tmp_path / "articles", 2)
    assert run_cli("build", "-c", str(config)).code == 0
    data = (tmp_path / "feeds" / "all.xml").read_bytes()
    assert b"<ttl>" not in data and b"syndication" not in data and b"sy:" not in data


def test_changing_the_site_schedule_updates_the_ttl(site: Callable[..., Path], tmp_path: Path) -> None:
    config = site({}, schedule="0 * * * *")
    make_articles(tmp_path / "articles", 2)
    assert run_cli("build", "-c", str(config)).code == 0
    site({}, schedule="*/15 * * * *")  # the same site, with another schedule
    assert run_cli("build", "-c", str(config)).code == 0
    assert _hints(tmp_path / "feeds" / "all.xml") == ("15", "hourly", "4")


def test_hints_are_byte_identical_from_run_to_run(site: Callable[..., Path], tmp_path: Path) -> None:
    config = _scheduled_site(site, tmp_path)
    assert run_cli("build", "-c", str(config)).code == 0
    first = {p.name: p.read_bytes() for p in (tmp_path / "feeds").iterdir()}
    shutil.rmtree(tmp_path / "feeds")
    shutil.rmtree(tmp_path / ".syndicate")
    assert run_cli("build", "-c", str(config), env={"TZ": "America/New_York"}).code == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "feeds").iterdir()} == first


VALIDATOR = os.environ.get("SYNDICATE_FEEDVALIDATOR", "")


@pytest.mark.skipif(not VALIDATOR or not shutil.which(VALIDATOR),
                    reason="W3C feed validator not available: set SYNDICATE_FEEDVALIDATOR "
                           "(docs/validating.md)")
def test_feeds_with_hints_are_valid(site: Callable[..., Path], tmp_path: Path) -> None:
    config = _scheduled_site(site, tmp_path)
    assert run_cli("build", "-c", str(config)).code == 0
    args: list[str] = []
    for path in sorted((tmp_path / "feeds").glob("*.xml")):
        args += ["--url", f"https://feeds.example.org/{path.name}", str(path)]
    proc = subprocess.run([VALIDATOR, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- build --due -----------------------------------------------------------------------------


def _two_schedules(site: Callable[..., Path], tmp_path: Path) -> Config:
    path = site({}, {"often": {**CHANNEL, "schedule": "*/15 * * * *"},
                     "daily": {**CHANNEL, "schedule": "0 6 * * *"}})
    make_articles(tmp_path / "articles", 2)
    return load_config(path)


def _state(feeds: Path, channel: str) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(feeds.iterdir())
            if p.stem == channel}  # its feeds and its preview page


def _items(feeds: Path, channel: str) -> int:
    return len(read_feed(feeds / f"{channel}.xml").entries)


def test_due_builds_only_the_channels_whose_run_came(site: Callable[..., Path],
                                                     tmp_path: Path) -> None:
    config = _two_schedules(site, tmp_path)
    articles, feeds = tmp_path / "articles", tmp_path / "feeds"

    first = build(config, utc(2024, 5, 16, 5, 50), due=True)  # never built: both due
    assert {f.channel for f in first.feeds} == {"often", "daily"} and first.not_due == ()

    idle = build(config, utc(2024, 5, 16, 5, 55), due=True)  # no run since 05:50
    assert idle.feeds == () and idle.not_due == ("often", "daily")
    assert idle.files_seen == 0  # the archive was not even scanned

    make_articles(articles, 1, start=2)
    both = build(config, utc(2024, 5, 16, 6, 0, 1), due=True)  # 06:00 is a run of both
    assert {f.channel for f in both.feeds} == {"often", "daily"}
    assert _items(feeds, "often") == _items(feeds, "daily") == 3

    make_articles(articles, 1, start=3)
    daily_before = _state(feeds, "daily")
    time.sleep(0.01)
    often = build(config, utc(2024, 5, 16, 6, 15, 3), due=True)
    assert {f.channel for f in often.feeds} == {"often"} and often.not_due == ("daily",)
    assert often.written == 3  # rss, atom, json of "often" only
    assert _items(feeds, "often") == 4
    assert _state(feeds, "daily") == daily_before  # not due: not even touched

    later = build(config, utc(2024, 5, 17, 6, 0), due=True)  # the next morning: both
    assert {f.channel for f in later.feeds} == {"often", "daily"}
    assert _items(feeds, "daily") == 4


def test_a_build_without_due_builds_all_and_counts_as_their_build(
        site: Callable[..., Path], tmp_path: Path) -> None:
    config = _two_schedules(site, tmp_path)
    full = build(config, utc(2024, 5, 16, 6, 20))
    assert {f.channel for f in full.feeds} == {"often", "daily"}
    assert build(config, utc(2024, 5, 16, 6, 25), due=True).feeds == ()
    assert {f.channel for f in build(config, utc(2024, 5, 16, 6, 30), due=True).feeds} == {"often"}
    # a build that is not --due builds everything, due or not
    assert {f.channel for f in build(config, utc(2024, 5, 16, 6, 31)).feeds} == {"often", "daily"}


def test_channels_without_any_schedule_are_built_by_every_due_run(
        site: Callable[..., Path], tmp_path: Path) -> None:
    config = load_config(site({}, {"plain": CHANNEL,
                                   "daily": {**CHANNEL, "schedule": "0 6 * * *"}}))
    make_articles(tmp_path / "articles", 2)
    build(config, utc(2024, 5, 16, 6, 1), due=True)
    report = build(config, utc(2024, 5, 16, 6, 2), due=True)
    assert {f.channel for f in report.feeds} == {"plain"} and report.not_due == ("daily",)


def test_a_channel_that_failed_stays_due(site: Callable[..., Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    config = _two_schedules(site, tmp_path)

    def broken(*args: object) -> bytes:
        raise ValueError("renderer refused")

    monkeypatch.setitem(render.RENDERERS, "rss", broken)
    failed = build(config, utc(2024, 5, 16, 6, 0, 1), due=True)
    assert len(failed.failures) == 2  # both channels' RSS
    monkeypatch.undo()
    retry = build(config, utc(2024, 5, 16, 6, 1), due=True)  # no new run, but not built yet
    assert {f.channel for f in retry.feeds} == {"often", "daily"} and not retry.failures
    assert build(config, utc(2024, 5, 16, 6, 2), due=True).feeds == ()


def test_due_through_the_command_line(site: Callable[..., Path], tmp_path: Path) -> None:
    """The real clock: `often` runs every minute, `daily` at a time 12 hours away, and both
    were last built two minutes ago, so only `often` is due now."""
    now = datetime.now(UTC)
    away = now + timedelta(hours=12)
    path = site({}, {"often": {**CHANNEL, "schedule": "* * * * *"},
                     "daily": {**CHANNEL, "schedule": f"{away.minute} {away.hour} * * *"}})
    make_articles(tmp_path / "articles", 2)
    build(load_config(path), now - timedelta(minutes=2))
    feeds = tmp_path / "feeds"
    daily_before = _state(feeds, "daily")
    make_articles(tmp_path / "articles", 1, start=2)
    result = run_cli("build", "--due", "-v", "-c", str(path))
    assert result.code == 0, result.err
    assert result.err == "", result.err
    assert "3 feeds: 3 written, 0 unchanged" in result.out and "1 channel not due" in result.out
    assert _items(feeds, "often") == 3
    assert _state(feeds, "daily") == daily_before

    again = run_cli("build", "--due", "--no-cache", "-c", str(path))
    assert again.code == 2 and "--due needs the cache" in again.err
