"""The command line as cron runs it: a real process, its exit code and its streams.

Proves every documented exit code (0 ok, 1 --strict with skipped articles, 2 usage,
3 config, 4 a feed or the source cannot be used, 5 locked), that help lists them, that
success is silent without -v, that unchanged input rewrites nothing, that writes are
atomic (no temporary files left, a killed run's leftovers removed), world-readable under
any umask and never through a symlink, and that overlapping builds never interleave.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syndicate import __version__
from syndicate.config import load_config
from syndicate.output import TMP_PREFIX, TMP_SUFFIX
from tests.conftest import (
    ROOT,
    SEED,
    make_articles,
    read_feed,
    read_json_feed,
    run_cli,
    tree_bytes,
    write_config,
)

SiteFactory = Callable[..., Path]
FEEDS = ("all.xml", "all.atom", "all.json")
OUTPUT = (*FEEDS, "all.html", "index.html", "index.opml")  # the feeds and the site pages
SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2024, 5, 16, 3, 0, 0, tzinfo=UTC)


def article(i: int) -> str:
    """A small article in the seed format, captured i minutes after START."""
    instant = START + timedelta(minutes=i)
    local = instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    return (f"<!--{int(instant.timestamp() * 1000)}-->\n"
            f"[第{i}号新闻 & more](https://cn.nytimes.com/world/20240516/story-{i}/)\n"
            "------\n\n"
            f"<address>REPORTER {i % 7}</address>"
            f'<time pudate="{local}" datetime="{local}">2024年5月16日</time>'
            f"<section><p>第{i}段导语。</p><p>Second paragraph of story {i}.</p></section>"
            "<footer><p>翻译：纽约时报中文网</p></footer>\n")


def articles(count: int) -> dict[str, bytes | str | Path]:
    files: dict[str, bytes | str | Path] = {SEED.name: SEED}
    files.update({f"story-{i:03d}.txt": article(i) for i in range(count)})
    return files


@pytest.fixture
def config(site: SiteFactory) -> Path:
    """A clean site: the seed and three small articles, one channel `all`."""
    return site(articles(3))


def build(config: Path, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    run = run_cli("build", "-c", str(config), *args, cwd=config.parent, timeout=timeout)
    return run.code, run.out, run.err


def feeds_of(config: Path) -> Path:
    return config.parent / "feeds"


def stat_of(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """name → (mtime_ns, inode, bytes) for every file in the folder."""
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes())
            for p in sorted(folder.iterdir()) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith(TMP_PREFIX) and p.name.endswith(TMP_SUFFIX))


def assert_feeds_well_formed(folder: Path, items: int | None = None) -> None:
    rss, atom = read_feed(folder / "all.xml"), read_feed(folder / "all.atom")
    json_feed = read_json_feed(folder / "all.json")
    if items is not None:
        assert len(rss.entries) == len(atom.entries) == len(json_feed["items"]) == items


@pytest.fixture
def lock(config: Path) -> Iterator[Callable[[], None]]:
    """Hold the build lock of `config`'s site in this process; yields a release()."""
    path = load_config(config).site.cache / "build.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            fcntl.flock(fd, fcntl.LOCK_UN)

    try:
        yield release
    finally:
        release()
        os.close(fd)


# --- help and version ------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["build", "--help"]], ids=["program", "build"])
def test_help_lists_every_exit_code(args: list[str]) -> None:
    run = run_cli(*args)
    assert run.code == 0
    assert "exit codes" in run.out.lower()
    for code in range(6):
        assert re.search(rf"^\s+{code}\s+\w", run.out, re.MULTILINE), f"exit {code} not in help"


@pytest.mark.parametrize("columns", [60, 200])
def test_help_fits_the_width_in_columns(columns: int) -> None:
    """Help is wrapped to $COLUMNS, as argparse does by itself (it is told the width, so
    that building the command line imports no shutil: see cli._HelpFormatter)."""
    run = run_cli("build", "--help", env={"COLUMNS": str(columns)})
    assert run.code == 0
    usage = run.out.split("\n\n")[0].splitlines()
    assert all(len(line) <= columns for line in usage)
    assert (len(usage) == 1) == (columns == 200)
    script = ("import sys\nfrom syndicate.cli import _parser\n_parser().parse_args(['build'])\n"
              "print('shutil' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "False"


def test_version() -> None:
    run = run_cli("--version")
    assert run.code == 0
    assert run.out.strip() == f"syndicate {__version__}"


# --- 0 -------------------------------------------------------------------------------------------


def test_exit_0_is_silent_without_v(config: Path) -> None:
    code, out, err = build(config)
    assert (code, out, err) == (0, "", "")
    assert_feeds_well_formed(feeds_of(config), items=4)


def test_v_prints_one_summary_line(config: Path) -> None:
    code, out, err = build(config, "-v")
    assert code == 0 and err == ""
    (line,) = out.splitlines()
    assert line.startswith("syndicate: ")
    assert "4 articles" in line and "3 written" in line


@pytest.mark.parametrize("args", [["show", str(SEED)], ["build", "-v"]])
def test_a_reader_that_left_before_the_output_is_no_error(config: Path, args: list[str]) -> None:
    # `syndicate show FILE | head -c0`: stdout is a pipe nobody reads any more. Buffered
    # as usual (as under cron: no PYTHONUNBUFFERED), short output is still in Python's
    # buffer when the command ends, so it is the flush on the way out that meets the
    # closed pipe (see __main__.exit_now); unbuffered, the command's own print does.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    reading, writing = os.pipe()
    os.close(reading)
    try:
        proc = subprocess.run([sys.executable, "-m", "syndicate", *args], cwd=config.parent,
                              stdout=writing, stderr=subprocess.PIPE, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, env=env)
    finally:
        os.close(writing)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_check_writes_nothing(config: Path) -> None:
    run = run_cli("check", "-c", str(config), cwd=config.parent)
    assert (run.code, run.out, run.err) == (0, "", "")
    assert not feeds_of(config).exists()


# --- 1 -------------------------------------------------------------------------------------------


def test_exit_1_with_strict_and_a_skipped_article(site: SiteFactory) -> None:
    config = site({**articles(2), "empty.txt": b""})
    code, out, err = build(config)
    assert code == 0 and out == ""
    assert "empty.txt" in err and "skipped" in err

    code, out, err = build(config, "--strict")
    assert code == 1 and out == ""
    assert "empty.txt" in err
    assert_feeds_well_formed(feeds_of(config), items=3)  # the feeds are still written


# --- 2 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["build", "--no-such-option"],
                                  ["build", "--wait", "soon"]],
                         ids=["no-command", "unknown-command", "bad-option", "bad-value"])
def test_exit_2_for_a_wrong_command_line(tmp_path: Path, args: list[str]) -> None:
    run = run_cli(*args, cwd=tmp_path)
    assert run.code == 2
    assert run.out == ""
    assert "usage:" in run.err
    assert "Traceback" not in run.err
    assert list(tmp_path.iterdir()) == []


# --- 3 -------------------------------------------------------------------------------------------


def test_exit_3_for_a_bad_config(site: SiteFactory) -> None:
    config = site(articles(1), {"all": {"title": "All", "link": "https://cn.nytimes.com/",
                                        "limit": "ten"}})
    code, out, err = build(config)
    assert code == 3 and out == ""
    (line,) = err.splitlines()
    assert "channels.all.limit" in line and "ten" in line
    assert not feeds_of(config).exists()


# --- 4 -------------------------------------------------------------------------------------------


def test_exit_4_when_a_feed_path_is_a_folder(config: Path) -> None:
    feeds = feeds_of(config)
    (feeds / "all.xml").mkdir(parents=True)
    code, out, err = build(config)
    assert code == 4 and out == ""
    assert "all.xml" in err
    assert (feeds / "all.xml").is_dir()
    # the other feeds of the channel are still written
    read_feed(feeds / "all.atom")
    read_json_feed(feeds / "all.json")
    assert leftovers(feeds) == []


def test_exit_4_when_the_source_folder_is_missing_keeps_the_last_feeds(config: Path) -> None:
    assert build(config)[0] == 0
    feeds = feeds_of(config)
    before = stat_of(feeds)
    (config.parent / "articles").rename(config.parent / "unmounted")
    code, out, err = build(config)
    assert code == 4 and out == ""
    (line,) = err.splitlines()
    assert "articles" in line and "source" in line
    assert stat_of(feeds) == before


def test_exit_4_for_a_symlink_at_a_feed_path_and_its_target_is_untouched(config: Path,
                                                                         tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "precious.xml"
    outside.parent.mkdir()
    outside.write_bytes(b"<precious/>\n")
    os.utime(outside, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = outside.stat()
    feeds = feeds_of(config)
    feeds.mkdir()
    (feeds / "all.xml").symlink_to(outside)

    code, out, err = build(config)
    assert code == 4 and out == ""
    assert "all.xml" in err and "link" in err
    assert (feeds / "all.xml").is_symlink()
    assert outside.read_bytes() == b"<precious/>\n"
    assert outside.stat().st_mtime_ns == before.st_mtime_ns
    assert outside.stat().st_ino == before.st_ino
    assert sorted(p.name for p in outside.parent.iterdir()) == ["precious.xml"]
    read_feed(feeds / "all.atom")  # the channel's other feeds are written
    assert leftovers(feeds) == []


# --- 5 -------------------------------------------------------------------------------------------


def test_exit_5_while_another_build_holds_the_lock(config: Path, lock: Callable[[], None]) -> None:
    code, out, err = build(config)
    assert code == 5 and out == ""
    (line,) = err.splitlines()
    assert "another" in line and "running" in line
    assert not feeds_of(config).exists()


def test_wait_gets_the_lock_when_it_is_released(config: Path, lock: Callable[[], None]) -> None:
    timer = threading.Timer(0.5, lock)
    started = time.monotonic()
    timer.start()
    try:
        code, out, err = build(config, "--wait", "2")
    finally:
        timer.cancel()
    assert (code, out, err) == (0, "", "")
    assert time.monotonic() - started >= 0.5
    assert_feeds_well_formed(feeds_of(config), items=4)


def test_wait_with_a_value_that_is_not_a_duration_does_not_hang(config: Path,
                                                                lock: Callable[[], None]) -> None:
    """`--wait nan` must be refused (exit 2) or treated as a duration (exit 5 at once);
    a cron job that never ends piles up a new process every run."""
    try:
        code, _, err = build(config, "--wait", "nan", timeout=4)
    except subprocess.TimeoutExpired:
        pytest.fail("`syndicate build --wait nan` still waiting after 4 s with the lock held")
    assert code in (2, 5), err


# --- unchanged input, temporary files, permissions ------------------------------------------------


def test_second_build_of_unchanged_input_rewrites_nothing(config: Path) -> None:
    assert build(config) == (0, "", "")
    feeds = feeds_of(config)
    first = stat_of(feeds)
    assert sorted(first) == sorted(OUTPUT)
    time.sleep(0.05)
    code, out, err = build(config, "-v")
    assert code == 0 and err == ""
    assert "0 written, 3 unchanged" in out
    assert stat_of(feeds) == first  # same bytes, same mtime_ns, same inode


def test_no_temporary_files_remain_and_a_killed_runs_leftovers_are_removed(config: Path) -> None:
    feeds = feeds_of(config)
    feeds.mkdir()
    leftover = feeds / f"{TMP_PREFIX}all.xml.99999{TMP_SUFFIX}"
    leftover.write_bytes(b"<rss>half a feed")
    other = feeds / f"{TMP_PREFIX}world.json.4242{TMP_SUFFIX}"
    other.write_bytes(b"{")
    mine = feeds / "notes.tmp"  # not syndicate's: stays
    mine.write_text("keep me")

    assert build(config) == (0, "", "")
    assert leftovers(feeds) == []
    assert mine.read_text() == "keep me"
    assert sorted(p.name for p in feeds.iterdir()) == sorted([*OUTPUT, "notes.tmp"])


def build_under_umask_077(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", 'umask 077; exec "$0" -m syndicate build -c "$1"',
                           sys.executable, str(config)], cwd=config.parent, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_feed_files_are_0644_under_umask_077(config: Path, site: SiteFactory) -> None:
    proc = build_under_umask_077(config)
    assert proc.returncode == 0, proc.stderr
    for name in OUTPUT:
        assert (feeds_of(config) / name).stat().st_mode & 0o777 == 0o644, name
    # a rewritten file too
    site(articles(4))
    proc = build_under_umask_077(config)
    assert proc.returncode == 0, proc.stderr
    for name in OUTPUT:
        assert (feeds_of(config) / name).stat().st_mode & 0o777 == 0o644, name


def test_output_folder_it_creates_is_readable_under_umask_077(config: Path) -> None:
    """0644 feeds are of no use to the web server inside a 0700 folder."""
    proc = build_under_umask_077(config)
    assert proc.returncode == 0, proc.stderr
    mode = feeds_of(config).stat().st_mode & 0o777
    assert mode & 0o055 == 0o055, f"output folder created with mode {mode:o}"


# --- overlapping builds ------------------------------------------------------------------------


@pytest.mark.parametrize("wait", [[], ["--wait", "30"]], ids=["no-wait", "wait"])
def test_two_overlapping_builds_never_interleave(site: SiteFactory, wait: list[str]) -> None:
    """Started together: one builds, the other exits 5 at once (or, with --wait, builds
    after it); never a crash, and the feeds left behind are whole."""
    config = site(articles(300), {"all": {"title": "All", "link": "https://cn.nytimes.com/",
                                          "limit": 400}})
    command = [sys.executable, "-m", "syndicate", "build", "-c", str(config), *wait]
    procs = [subprocess.Popen(command, cwd=config.parent, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
             for _ in range(2)]
    results: list[tuple[int, str, str]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        results.append((proc.returncode, out, err))
    codes = sorted(code for code, _, _ in results)
    assert codes in (([0, 0],) if wait else ([0, 0], [0, 5])), results
    for code, out, err in results:
        assert out == ""
        assert "Traceback" not in err
        if code == 5:
            assert len(err.splitlines()) == 1 and "another" in err
        else:
            assert err == ""
    feeds = feeds_of(config)
    assert_feeds_well_formed(feeds, items=301)
    assert leftovers(feeds) == []
    assert sorted(tree_bytes(feeds)) == sorted(OUTPUT)


def _build_on_a_terminal(config: Path) -> tuple[int, str]:
    """`syndicate build` with its stderr on a terminal (a pseudo-terminal 100 columns
    wide, as a user's would be): the exit code and what the terminal showed."""
    terminal, its_end = os.openpty()
    fcntl.ioctl(its_end, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "syndicate", "build", "-c", str(config)],
                            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=its_end)
    os.close(its_end)
    shown = bytearray()
    while True:
        try:
            data = os.read(terminal, 65536)
        except OSError:  # EIO: every process holding the terminal's other end has ended
            break
        if not data:
            break
        shown += data
    os.close(terminal)
    return proc.wait(timeout=120), shown.decode("utf-8", "replace")


def test_progress_bar_with_counts_and_rate_on_a_terminal_only(tmp_path: Path) -> None:
    """Reading a large archive shows how many files are read of how many, and how fast,
    on a terminal; under cron (no terminal), a build says nothing at all."""
    make_articles(tmp_path / "articles", 600)
    config = write_config(tmp_path, {"all": {"title": "All", "link": "https://cn.nytimes.com/"}})
    code, shown = _build_on_a_terminal(config)
    assert code == 0
    assert "reading:" in shown and "/600 [" in shown and "file/s" in shown, shown

    for kept in (tmp_path / ".syndicate", tmp_path / "feeds"):
        shutil.rmtree(kept)
    under_cron = run_cli("build", "-c", str(config))
    assert under_cron.code == 0 and under_cron.out == "" and under_cron.err == ""

    make_articles(tmp_path / "articles", 1, start=600)  # one file to read: no bar for it
    code, shown = _build_on_a_terminal(config)
    assert code == 0 and "reading:" not in shown, shown
