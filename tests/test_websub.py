"""WebSub: every feed names the hub and itself, and after a build the hub is told of
exactly the feeds whose bytes changed, by a real HTTP hub on 127.0.0.1 that records
what it is sent. A hub that is down, refuses or hangs costs a warning and a bounded
wait, never the build."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import lxml.etree
import pytest

from syndicate import cli, publish
from syndicate.build import build
from syndicate.config import load_config
from tests.conftest import make_articles, read_feed, read_json_feed, run_cli

BASE = "https://feeds.example.org/"
ATOM = "{http://www.w3.org/2005/Atom}"


class Hub:
    """A WebSub hub that records each publish request. `answers` is consumed one status
    per request (then 204); `delay` makes it slow."""

    def __init__(self, answers: list[int] | None = None, delay: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers = list(answers or [])
        self.delay = delay
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hub.lock:
                    hub.requests.append({"type": self.headers.get("Content-Type"),
                                         "form": parse_qs(body.decode("ascii"), strict_parsing=True)})
                    status = hub.answers.pop(0) if hub.answers else 204
                if hub.delay:
                    time.sleep(hub.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def topics(self) -> list[str]:
        """The feed URLs pinged so far, in order, and forget them."""
        with self.lock:
            seen = [r["form"]["hub.url"][0] for r in self.requests]
            self.requests.clear()
        return seen

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub() -> Iterator[Hub]:
    server = Hub()
    yield server
    server.close()


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries a tenth of a second apart, for in-process builds (cli.main, build)."""
    monkeypatch.setattr(publish, "HUB_BACKOFF", (0.05, 0.1))


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CHANNELS = {
    "world": {"title": "World", "link": "https://cn.nytimes.com/world/", "include": {"section": "world"}},
    "china": {"title": "China", "link": "https://cn.nytimes.com/china/", "include": {"section": "china"}},
}
ALL_FEEDS = {f"{BASE}{c}{s}" for c in CHANNELS for s in (".xml", ".atom", ".json")}


def test_every_feed_links_the_hub_and_itself(tmp_path: Path, site: Callable[..., Path], hub: Hub) -> None:
    make_articles(tmp_path / "articles", 12)
    config = site({}, CHANNELS, hub=hub.url)
    result = run_cli("build", "-v", "--log-format", "json", "-c", str(config))
    assert result.code == 0
    summary = json.loads(result.out.strip().splitlines()[-1])
    assert summary["hub_notified"] == 6 and summary["hub_failed"] == 0
    feeds = tmp_path / "feeds"
    for name in ("world.xml", "world.atom"):
        links = {(link.rel, link.href) for link in read_feed(feeds / name).feed.links}
        assert ("hub", hub.url) in links
        assert ("self", BASE + name) in links
    # RSS carries them as atom:link in the channel (feedparser shows the channel's links too)
    channel = lxml.etree.parse(str(feeds / "world.xml")).getroot().find("channel")
    assert channel is not None
    assert {link.get("rel") for link in channel.iter(f"{ATOM}link")} >= {"hub", "self"}
    feed = read_json_feed(feeds / "world.json")
    assert feed["hubs"] == [{"type": "WebSub", "url": hub.url}]
    assert feed["feed_url"] == BASE + "world.json"


def test_the_hub_hears_of_changed_feeds_only(tmp_path: Path, site: Callable[..., Path], hub: Hub) -> None:
    make_articles(tmp_path / "articles", 12)
    config = site({}, CHANNELS, hub=hub.url)

    first = run_cli("build", "-c", str(config))
    assert first.code == 0 and first.err == ""
    for request in hub.requests:  # one form-encoded publish ping per feed
        assert request["type"] == "application/x-www-form-urlencoded"
        assert request["form"]["hub.mode"] == ["publish"]
        assert len(request["form"]["hub.url"]) == 1
    assert sorted(hub.topics()) == sorted(ALL_FEEDS)  # every feed is new

    again = run_cli("build", "-v", "-c", str(config))
    assert again.code == 0 and " 0 written, " in again.out
    assert hub.topics() == []  # nothing changed, nobody is told

    # One new story in section china (make_articles cycles world, china, business, …)
    make_articles(tmp_path / "articles", 1, start=13)
    assert run_cli("build", "-c", str(config)).code == 0
    assert sorted(hub.topics()) == sorted(f"{BASE}china{s}" for s in (".xml", ".atom", ".json"))


def test_a_stopped_hub_is_a_warning_and_the_feeds_are_written(
        tmp_path: Path, site: Callable[..., Path], capsys: pytest.CaptureFixture[str],
        quick_retries: None) -> None:
    make_articles(tmp_path / "articles", 6)
    config = site({}, {"world": CHANNELS["world"]}, hub=f"http://127.0.0.1:{closed_port()}/")
    assert cli.main(["build", "-c", str(config)]) == 0
    err = capsys.readouterr().err
    for suffix in (".xml", ".atom", ".json"):
        assert (tmp_path / "feeds" / f"world{suffix}").stat().st_size > 0
        assert (f"{BASE}world{suffix}: warning: the WebSub hub was not told of this update "
                "(connection refused); it will be told after the next build") in err
    assert "error" not in err


def test_a_failed_ping_is_sent_after_the_next_build(
        tmp_path: Path, site: Callable[..., Path], capsys: pytest.CaptureFixture[str],
        quick_retries: None) -> None:
    hub = Hub(answers=[503] * 9)  # three feeds, three attempts each: all fail
    try:
        make_articles(tmp_path / "articles", 3)
        config = str(site({}, {"world": CHANNELS["world"]}, hub=hub.url))
        assert cli.main(["build", "-c", config]) == 0
        assert capsys.readouterr().err.count("was not told of this update (HTTP 503)") == 3
        assert len(hub.topics()) == 9
        assert cli.main(["build", "-c", config]) == 0  # no feed changed, but three are owed
        assert capsys.readouterr().err == ""
        assert sorted(hub.topics()) == sorted(f"{BASE}world{s}" for s in (".xml", ".atom", ".json"))
        assert cli.main(["build", "-c", config]) == 0
        assert hub.topics() == []  # and then they are square
    finally:
        hub.close()


def test_a_refusing_hub_is_not_asked_three_times(tmp_path: Path, site: Callable[..., Path]) -> None:
    hub = Hub(answers=[400, 400, 400])
    try:
        make_articles(tmp_path / "articles", 3)
        report = build(load_config(site({}, {"world": CHANNELS["world"]}, hub=hub.url)),
                       datetime.now(UTC), notify=True)
        assert [why for _, why in report.hub_failed] == ["HTTP 400"] * 3
        assert len(hub.topics()) == 3  # a 4xx is final: one attempt per feed
    finally:
        hub.close()


def test_a_slow_hub_is_bounded_by_the_timeout(tmp_path: Path, site: Callable[..., Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "HUB_TIMEOUT", 0.3)
    monkeypatch.setattr(publish, "HUB_BACKOFF", (0.1, 0.1))
    monkeypatch.setattr(publish, "HUB_DEADLINE", 1.0)
    hub = Hub(delay=5)
    try:
        make_articles(tmp_path / "articles", 3)
        config = load_config(site({}, {"world": CHANNELS["world"]}, hub=hub.url))
        started = time.monotonic()
        report = build(config, datetime.now(UTC), notify=True)
        elapsed = time.monotonic() - started
        assert elapsed < 3, f"the build waited {elapsed:.1f}s for a hub that hangs"
        assert report.written == 3 and not report.failures
        assert report.hub_notified == ()
        assert sorted(url for url, _ in report.hub_failed) == sorted(
            f"{BASE}world{s}" for s in (".xml", ".atom", ".json"))
        assert {why for _, why in report.hub_failed} == {"timed out"}
    finally:
        hub.close()


def test_check_and_library_builds_tell_no_hub(tmp_path: Path, site: Callable[..., Path], hub: Hub) -> None:
    """Only `syndicate build` publishes: `check` writes nothing, and a library call (or
    `serve --build`, a local preview) has not asked for it."""
    make_articles(tmp_path / "articles", 3)
    config = site({}, {"world": CHANNELS["world"]}, hub=hub.url)
    assert run_cli("check", "-c", str(config)).code == 0
    build(load_config(config), datetime.now(UTC))
    assert hub.topics() == []

