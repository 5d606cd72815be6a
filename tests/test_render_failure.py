"""A feed that cannot be rendered keeps its last good file, is named with its channel,
makes the run exit 4, and does not stop the other feeds.

The failure is injected by replacing one renderer in-process: there is no input that
makes a correct renderer fail, and this is the path a renderer bug would take."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from syndicate import cli
from syndicate.render import RENDERERS
from tests.conftest import make_articles, write_config


def _refuse(*_args: Any) -> bytes:
    raise ValueError("renderer refused the data")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    make_articles(tmp_path / "articles", 5)
    config = write_config(tmp_path, {
        "all": {"title": "All", "link": "https://cn.nytimes.com/"},
        "other": {"title": "Other", "link": "https://cn.nytimes.com/"},
    })
    assert cli.main(["build", "-c", str(config)]) == 0
    make_articles(tmp_path / "articles", 1, start=5)  # new input: every feed would change
    return config


def test_failed_feed_keeps_last_good_file(built: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    feeds = built.parent / "feeds"
    atom_before = (feeds / "all.atom").read_bytes()
    rss_before = (feeds / "all.xml").read_bytes()
    original: Callable[..., bytes] = RENDERERS["atom"]

    def only_all_fails(site: Any, channel: Any, items: Sequence[Any]) -> bytes:
        return _refuse() if channel.id == "all" else original(site, channel, items)

    monkeypatch.setitem(RENDERERS, "atom", only_all_fails)
    code = cli.main(["build", "-c", str(built)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_OUTPUT
    [line] = [line for line in err.splitlines() if "all.atom" in line]
    assert "channel 'all' (atom)" in line and "renderer refused the data" in line
    assert "last good file is kept" in line
    assert (feeds / "all.atom").read_bytes() == atom_before  # untouched
    assert (feeds / "all.xml").read_bytes() != rss_before  # the other formats went on
    assert "story-5" in (feeds / "other.atom").read_text(encoding="utf-8")  # and other channels
    assert not [p for p in feeds.iterdir() if p.name.startswith(".")]


def test_next_good_run_repairs_it(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RENDERERS, "atom", _refuse)
    assert cli.main(["build", "-c", str(built)]) == cli.EXIT_OUTPUT
    monkeypatch.undo()
    assert cli.main(["build", "-c", str(built)]) == 0
    assert "story-5" in (built.parent / "feeds" / "all.atom").read_text(encoding="utf-8")


def test_feed_that_is_not_well_formed_is_never_written(built: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Every feed is read through by expat before it is written: a renderer bug that
    gives broken XML costs that feed this run, never its readers' copy."""
    feeds = built.parent / "feeds"
    before = (feeds / "all.xml").read_bytes()
    original: Callable[..., bytes] = RENDERERS["rss"]

    def broken(site: Any, channel: Any, items: Sequence[Any]) -> bytes:
        data = original(site, channel, items)
        return data.replace(b"</channel>", b"</chanel>") if channel.id == "all" else data

    monkeypatch.setitem(RENDERERS, "rss", broken)
    assert cli.main(["build", "-c", str(built)]) == cli.EXIT_OUTPUT
    [line] = [line for line in capsys.readouterr().err.splitlines() if "all.xml" in line]
    assert "not well-formed XML: mismatched tag" in line
    assert (feeds / "all.xml").read_bytes() == before
    assert "story-5" in (feeds / "other.xml").read_text(encoding="utf-8")
