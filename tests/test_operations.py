"""Unattended operation: a build killed at any moment leaves every served file complete
and well formed; an emptied or missing source never replaces published feeds; problems
can be logged as JSON lines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import lxml.etree
import pytest

from tests.conftest import make_articles, run_cli, tree_bytes, write_config


def _assert_served_files_complete(output: Path) -> None:
    for path in output.iterdir():
        if path.name.startswith("."):
            continue  # temporary files of the killed run: never served as feeds
        data = path.read_bytes()
        if path.suffix == ".json":
            json.loads(data)
        else:
            lxml.etree.fromstring(data)


def _assert_no_process_left(config: str) -> None:
    """A killed build's worker processes end with it: left behind, they would hold the
    build lock they inherited and lock every later build out."""
    deadline = time.monotonic() + 2
    while True:
        left = [p for p in Path("/proc").glob("[0-9]*/cmdline")
                if config.encode() in _read_or_empty(p)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"processes outlived the killed build: {left}"


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended while we looked
        return b""


def test_killed_builds_leave_complete_feeds(tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    make_articles(articles, 1500)
    channels = {f"c{i}": {"title": f"Channel {i}", "link": "https://cn.nytimes.com/", "limit": 40 + i}
                for i in range(12)}
    config = write_config(tmp_path, channels)
    output = tmp_path / "feeds"
    started = time.monotonic()
    assert run_cli("build", "-c", str(config)).code == 0
    full = time.monotonic() - started
    added = 1500
    # Kill early (while parsing) and late (while writing), each time with new input, so
    # the killed run was about to replace every feed.
    for fraction in (0.3, 0.6, 0.8, 0.9, 0.95, 0.98, 1.0, 1.05):
        make_articles(articles, 1, start=added)
        added += 1
        proc = subprocess.Popen([sys.executable, "-m", "syndicate", "build", "-c", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _assert_served_files_complete(output)
        _assert_no_process_left(str(config))
    result = run_cli("build", "-c", str(config))
    assert result.code == 0, result.err
    _assert_served_files_complete(output)
    assert not [p.name for p in output.iterdir() if p.name.startswith(".")]
    newest = json.loads((output / "c0.json").read_text(encoding="utf-8"))["items"][0]
    assert newest["id"].endswith(f"/story-{added - 1}/")


@pytest.fixture
def published(tmp_path: Path) -> Path:
    make_articles(tmp_path / "articles", 30)
    config = write_config(tmp_path, {"all": {"title": "All", "link": "https://cn.nytimes.com/"}})
    assert run_cli("build", "-c", str(config)).code == 0
    return config


def test_emptied_source_keeps_published_feeds(published: Path) -> None:
    folder = published.parent
    before = tree_bytes(folder / "feeds")
    for path in (folder / "articles").iterdir():
        path.unlink()
    result = run_cli("build", "-c", str(published))
    assert result.code == 4
    assert "would shrink from 30 to 0 items" in result.err and "--allow-shrink" in result.err
    assert tree_bytes(folder / "feeds") == before
    assert run_cli("build", "--allow-shrink", "-c", str(published)).code == 0
    assert json.loads((folder / "feeds" / "all.json").read_text())["items"] == []


def test_mostly_lost_source_keeps_published_feeds(published: Path) -> None:
    folder = published.parent
    before = tree_bytes(folder / "feeds")
    for path in sorted((folder / "articles").iterdir())[:20]:
        path.unlink()
    result = run_cli("build", "-c", str(published))
    assert result.code == 4 and "would shrink from 30 to 10 items" in result.err
    assert tree_bytes(folder / "feeds") == before


def test_lowering_the_limit_is_not_a_loss(published: Path) -> None:
    folder = published.parent
    write_config(folder, {"all": {"title": "All", "link": "https://cn.nytimes.com/", "limit": 5}})
    assert run_cli("build", "-c", str(published)).code == 0
    assert len(json.loads((folder / "feeds" / "all.json").read_text())["items"]) == 5


def test_missing_source_folder(published: Path) -> None:
    folder = published.parent
    before = tree_bytes(folder / "feeds")
    (folder / "articles").rename(folder / "elsewhere")
    result = run_cli("build", "-c", str(published))
    assert result.code == 4
    assert "source folder does not exist" in result.err
    assert tree_bytes(folder / "feeds") == before


def test_json_log_lines(tmp_path: Path) -> None:
    make_articles(tmp_path / "articles", 3)
    (tmp_path / "articles" / "notes.txt").write_text("just some notes\n", encoding="utf-8")
    config = write_config(tmp_path, {"all": {"title": "All", "link": "https://cn.nytimes.com/"}})
    result = run_cli("build", "-v", "--log-format", "json", "-c", str(config))
    assert result.code == 0
    [problem] = [json.loads(line) for line in result.err.splitlines()]
    assert problem["level"] == "skipped" and problem["file"].endswith("notes.txt")
    assert "[title](url)" in problem["message"]
    summary = json.loads(result.out)
    assert summary["articles"] == 3 and summary["skipped"] == 1 and summary["written"] == 3
