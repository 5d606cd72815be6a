"""Enclosure probing against a real HTTP server on 127.0.0.1 that serves images of known
sizes and types and counts every request: the sizes and types reach every format;
404s, timeouts, pages that are not images and redirects that lead where syndicate may
not go leave length 0 and are counted; private addresses are refused unless
site.probe_private; and what was asked once is never asked again."""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import lxml.etree
import pytest

from syndicate import archive, probe, publish
from syndicate.build import build
from syndicate.cache import Cache, ProbeRecord
from syndicate.config import load_config
from syndicate.model import Article, Image
from syndicate.publish import refusal
from tests.conftest import read_feed, read_json_feed, run_cli

MEDIA = "{http://search.yahoo.com/mrss/}"


@dataclass(frozen=True)
class Route:
    status: int = 200
    mime: str = "image/jpeg"
    length: int | None = None  # Content-Length (None: no header)
    head_status: int | None = None  # a different answer to HEAD (405: HEAD not allowed)
    ranges: bool = True  # honours Range: bytes=0-0 with a 206
    location: str = ""  # for redirects; "{base}" is the server's own address
    delay: float = 0.0


ROUTES = {
    "/plain.jpg": Route(length=12345),
    "/no-head.png": Route(mime="image/png", length=4321, head_status=405),
    "/really-webp.jpg": Route(mime="image/webp", length=999),  # the server knows better
    "/no-length.gif": Route(mime="image/gif", length=None, ranges=False),
    "/octet.jpg": Route(mime="application/octet-stream", length=2048),
    "/moved.jpg": Route(status=301, location="{base}/plain2.jpg"),
    "/plain2.jpg": Route(length=777),
    "/missing.jpg": Route(status=404, mime="text/html", length=10),
    "/page.jpg": Route(mime="text/html; charset=utf-8", length=100),
    "/to-metadata.jpg": Route(status=302, location="http://169.254.169.254/latest/meta-data/x.jpg"),
    "/to-file.jpg": Route(status=302, location="file:///etc/passwd"),
    "/loop.jpg": Route(status=302, location="{base}/loop.jpg"),
}
SIZED = {"/plain.jpg": (12345, "image/jpeg"), "/no-head.png": (4321, "image/png"),
         "/really-webp.jpg": (999, "image/webp"), "/no-length.gif": (555, "image/gif"),
         "/octet.jpg": (2048, "image/jpeg"), "/moved.jpg": (777, "image/jpeg")}
FAILED = {
    "/missing.jpg": "HTTP 404",
    "/page.jpg": "not an image (text/html)",
    "/to-metadata.jpg": "refused: 169.254.169.254 is a cloud metadata address (169.254.169.254)",
    "/to-file.jpg": "refused: file scheme (only http and https are fetched)",
    "/loop.jpg": "more than 3 redirects",
}


class ImageServer:
    def __init__(self, routes: dict[str, Route]) -> None:
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Range header)
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self.answer(body=False)

            def do_GET(self) -> None:
                self.answer(body=True)

            def answer(self, body: bool) -> None:
                wanted = self.headers.get("Range", "")
                with server.lock:
                    server.requests.append((self.command, self.path, wanted))
                route = routes.get(self.path, Route(status=404, mime="text/plain", length=0))
                if route.delay:
                    time.sleep(route.delay)
                status = route.head_status if (not body and route.head_status) else route.status
                ranged = body and bool(wanted) and route.ranges and status == 200 and route.length
                self.send_response(206 if ranged else status)
                if route.location:
                    self.send_header("Location", route.location.format(base=server.base))
                self.send_header("Content-Type", route.mime)
                if ranged:
                    self.send_header("Content-Range", f"bytes 0-0/{route.length}")
                    self.send_header("Content-Length", "1")
                    self.end_headers()
                    self.wfile.write(b"x")
                    return
                # no length on HEAD; a GET that ignores the range sends the whole file
                length = route.length if route.length is not None else (555 if body else None)
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                if body and length:
                    self.wfile.write(b"x" * length)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def images() -> Iterator[ImageServer]:
    server = ImageServer(ROUTES)
    yield server
    server.close()


def article(base: str, paths: list[str], n: int = 1, extra: str = "",
            captured: int = 1715830622000) -> str:
    """An article whose lead image is the first path and whose body holds the others."""
    lead, *rest = paths
    body = "".join(f'<p><img src="{base}{p}"><small>图 {p}</small></p>' for p in rest)
    return (f"<!--{captured + n * 60_000}-->\n[第{n}篇](https://cn.nytimes.com/world/20240516/s{n}/)\n"
            f'------\n\n<address>A</address><figure><img src="{base}{lead}"><figcaption>首图'
            f"</figcaption></figure><section><p>第一段。{extra}</p>{body}</section>")


CHANNEL = {"all": {"title": "All", "link": "https://cn.nytimes.com/", "images": "enclosure"}}


def sizes_in_every_format(feeds: Path) -> dict[str, dict[str, tuple[int, str]]]:
    """url → (length, type) as each format states it: RSS media:content, Atom enclosure
    links, JSON attachments (plus RSS's single <enclosure> under "enclosure")."""
    found: dict[str, dict[str, tuple[int, str]]] = {"rss": {}, "atom": {}, "json": {}, "enclosure": {}}
    root = lxml.etree.parse(str(feeds / "all.xml")).getroot()
    for item in root.iter("item"):
        enclosure = item.find("enclosure")
        assert enclosure is not None
        found["enclosure"][enclosure.get("url", "")] = (int(enclosure.get("length", "-1")),
                                                         enclosure.get("type", ""))
        for content in item.iter(f"{MEDIA}content"):
            found["rss"][content.get("url", "")] = (int(content.get("fileSize", "0")),
                                                    content.get("type", ""))
    for entry in read_feed(feeds / "all.atom").entries:
        for link in entry.links:
            if link.rel == "enclosure":
                found["atom"][link.href] = (int(link.length), link.type)
    for item in read_json_feed(feeds / "all.json")["items"]:
        for attachment in item["attachments"]:
            found["json"][attachment["url"]] = (attachment.get("size_in_bytes", 0),
                                                attachment["mime_type"])
    return found


def test_probed_sizes_and_types_reach_every_format(tmp_path: Path, site: Callable[..., Path],
                                                    images: ImageServer) -> None:
    paths = [*SIZED, *FAILED]
    config = site({"a.txt": article(images.base, paths)}, CHANNEL, probe_enclosures=True,
                  probe_private=True)
    result = run_cli("build", "-v", "-c", str(config))
    assert result.code == 0, result.err
    found = sizes_in_every_format(tmp_path / "feeds")
    for path, (length, mime) in SIZED.items():
        url = images.base + path
        for fmt in ("rss", "atom", "json"):
            assert found[fmt][url] == (length, mime), (fmt, path)
    assert found["enclosure"] == {images.base + "/plain.jpg": (12345, "image/jpeg")}  # the lead
    for path in FAILED:  # unknown: length 0 (RSS, Atom), no size_in_bytes (JSON)
        url = images.base + path
        assert found["atom"][url][0] == 0 and found["rss"][url][0] == 0 and found["json"][url][0] == 0
    # failures are counted and named, one warning line per reason
    assert f"{len(SIZED) + len(FAILED)} enclosures probed ({len(FAILED)} without a size)" in result.out
    for path, why in FAILED.items():
        assert f"enclosure size unknown (length 0) for 1 image: {why}; e.g. {images.base}{path}" \
            in result.err
    assert result.err.count("\n") == len(FAILED)
    # a HEAD first; the ranged GET only where HEAD gave no length
    ranged = {path for method, path, wanted in images.requests if method == "GET"}
    assert ranged == {"/no-head.png", "/no-length.gif"}
    assert all(wanted == "bytes=0-0" for method, _, wanted in images.requests if method == "GET")

    asked = images.count()
    again = run_cli("build", "-v", "-c", str(config))
    assert again.code == 0 and again.err == "" and images.count() == asked  # nothing asked again
    # an edited article is rendered again, from the sizes already known
    (tmp_path / "articles" / "a.txt").write_text(article(images.base, paths, extra="更正。"),
                                                 encoding="utf-8")
    edited = run_cli("build", "-v", "-c", str(config))
    assert edited.code == 0 and edited.err == "" and " 3 written, " in edited.out
    assert images.count() == asked
    assert sizes_in_every_format(tmp_path / "feeds") == found


def test_the_command_line_flag_turns_probing_on(tmp_path: Path, site: Callable[..., Path],
                                                 images: ImageServer) -> None:
    config = site({"a.txt": article(images.base, ["/plain.jpg"])}, CHANNEL, probe_private=True)
    assert run_cli("build", "-c", str(config)).code == 0
    assert images.count() == 0  # probe_enclosures is off by default
    result = run_cli("build", "--probe-enclosures", "-v", "--log-format", "json", "-c", str(config))
    assert result.code == 0, result.err
    summary = json.loads(result.out.strip().splitlines()[-1])
    assert summary["probed"] == 1 and summary["probe_failed"] == 0 and summary["written"] == 3
    assert sizes_in_every_format(tmp_path / "feeds")["atom"][images.base + "/plain.jpg"] == \
        (12345, "image/jpeg")


def test_loopback_is_refused_without_probe_private(tmp_path: Path, site: Callable[..., Path],
                                                     images: ImageServer) -> None:
    config = site({"a.txt": article(images.base, ["/plain.jpg", "/no-head.png"])}, CHANNEL,
                  probe_enclosures=True)
    result = run_cli("build", "-v", "-c", str(config))
    assert result.code == 0, result.err
    assert images.count() == 0  # not a single request reached it
    assert ("enclosure size unknown (length 0) for 2 images: refused: 127.0.0.1 is a loopback "
            "address (127.0.0.1)") in result.err
    assert "0 enclosures probed (2 without a size)" in result.out
    assert set(sizes_in_every_format(tmp_path / "feeds")["atom"].values()) == \
        {(0, "image/jpeg"), (0, "image/png")}


def test_timeouts_are_bounded_and_counted(tmp_path: Path, site: Callable[..., Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "TIMEOUT", 0.3)
    monkeypatch.setattr(probe, "PER_IMAGE", 1.0)
    server = ImageServer({**ROUTES, "/slow.jpg": Route(length=10, delay=3)})
    try:
        config = load_config(site({"a.txt": article(server.base, ["/slow.jpg", "/plain.jpg"])},
                                  CHANNEL, probe_enclosures=True, probe_private=True))
        started = time.monotonic()
        report = build(config, datetime.now(UTC))
        assert time.monotonic() - started < 2.5
        assert dict(report.probe_failures) == {server.base + "/slow.jpg": "timed out"}
        assert report.probed == 2 and not report.failures and report.written == 3
    finally:
        server.close()


def test_images_left_over_when_time_runs_out_are_asked_next_build(
        tmp_path: Path, site: Callable[..., Path], images: ImageServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(site({"a.txt": article(images.base, ["/plain.jpg"])}, CHANNEL,
                              probe_enclosures=True, probe_private=True))
    monkeypatch.setattr(probe, "PROBE_BUDGET", 0.0)
    first = build(config, datetime.now(UTC))
    assert images.count() == 0 and first.probed == 0 and first.written == 3
    monkeypatch.setattr(probe, "PROBE_BUDGET", 60.0)
    second = build(config, datetime.now(UTC))  # the feeds wait for their sizes: rendered again
    assert second.probed == 1 and second.written == 3
    assert sizes_in_every_format(tmp_path / "feeds")["json"][images.base + "/plain.jpg"] == \
        (12345, "image/jpeg")
    third = build(config, datetime.now(UTC))
    assert third.probed == 0 and third.written == 0


def test_archive_months_wait_for_their_sizes_without_being_rendered_in_vain(
        tmp_path: Path, site: Callable[..., Path], images: ImageServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Months rendered before their images were asked are rendered again, but not while
    the build's probing time is spent: they would come out the same."""
    month = 31 * 24 * 3600 * 1000
    files = {f"{n}.txt": article(images.base, ["/plain.jpg"], n=n, captured=1706745600000 + n * month)
             for n in range(4)}  # February to May 2024: three archive months
    config = load_config(site(files, {"all": {**CHANNEL["all"], "archive": "monthly"}},
                              probe_enclosures=True, probe_private=True))
    renders: list[str] = []
    original = archive.render_month

    def counted(*args: Any) -> list[bytes]:
        renders.append(args[3])
        return original(*args)

    monkeypatch.setattr(archive, "render_month", counted)
    monkeypatch.setattr(probe, "PROBE_BUDGET", 0.0)
    first = build(config, datetime.now(UTC))
    assert len(first.archives) == 9 and images.count() == 0
    renders.clear()
    build(config, datetime.now(UTC))  # still no time: only the first month tries again
    assert sorted(set(renders)) == ["2024-04"] and images.count() == 0
    monkeypatch.setattr(probe, "PROBE_BUDGET", 60.0)
    renders.clear()
    third = build(config, datetime.now(UTC))
    assert sorted(set(renders)) == ["2024-02", "2024-03", "2024-04"]
    assert third.probed == 1 and all(a.written for a in third.archives)
    renders.clear()
    assert build(config, datetime.now(UTC)).archives and renders == []


def test_a_failure_is_asked_again_after_a_week() -> None:
    cache, _ = Cache.open(None, "test")
    now = datetime(2024, 6, 1, tzinfo=UTC)
    cache.put_probes([
        ("https://a.example/old-failure.jpg", ProbeRecord(0, "", "timed out", now - timedelta(days=8))),
        ("https://a.example/new-failure.jpg", ProbeRecord(0, "", "timed out", now - timedelta(days=1))),
        ("https://a.example/old-success.jpg", ProbeRecord(10, "image/png", "", now - timedelta(days=400))),
    ])
    sizer = probe.Sizer(cache, now, allow_private=False)
    asked: list[str] = []
    sizer._ask = lambda url: asked.append(url) or (ProbeRecord(5, "", "", now), True)  # type: ignore[method-assign]
    images = tuple(Image(f"https://a.example/{name}.jpg", "image/jpeg")
                   for name in ("old-failure", "new-failure", "old-success"))
    item = Article(url="https://x.example/", title="t", published=now, updated=now, section="",
                   authors=(), summary="", body_html="", body_html_without_images="", images=images)
    [sized] = sizer.sized([item])
    assert asked == ["https://a.example/old-failure.jpg"]
    assert [image.length for image in sized.images] == [5, 0, 10]
    assert sized.images[2].mime == "image/png"
    stored = cache.probes(["https://a.example/old-failure.jpg"])
    assert stored["https://a.example/old-failure.jpg"].length == 5


@pytest.mark.parametrize(("address", "private_ok", "why"), [
    ("93.184.216.34", True, None),
    ("2606:2800:220:1:248:1893:25c8:1946", True, None),
    ("127.0.0.1", False, "a loopback address"),
    ("::1", False, "a loopback address"),
    ("10.1.2.3", False, "a private address"),
    ("192.168.0.10", False, "a private address"),
    ("172.16.5.4", False, "a private address"),
    ("100.64.0.1", False, "a private address"),  # shared address space (carrier NAT)
    ("fd12:3456::1", False, "a private address"),
    ("169.254.10.1", False, "a link-local address"),
    ("fe80::1", False, "a link-local address"),
    ("169.254.169.254", None, "a cloud metadata address"),  # refused even with probe_private
    ("fd00:ec2::254", None, "a cloud metadata address"),
    ("::ffff:169.254.169.254", None, "a cloud metadata address"),  # IPv4-mapped
    ("64:ff9b::a9fe:a9fe", None, "a cloud metadata address"),  # NAT64
    ("::ffff:127.0.0.1", False, "a loopback address"),
    ("2002:7f00:1::1", False, "a loopback address"),  # 6to4 around 127.0.0.1
    ("224.0.0.1", None, "a multicast address"),
    ("ff02::1", None, "a multicast address"),
    ("0.0.0.0", None, "an unspecified address"),
    ("::", None, "an unspecified address"),
    ("240.0.0.1", None, "a reserved address"),
    ("255.255.255.255", None, "a reserved address"),
])
def test_which_addresses_are_refused(address: str, private_ok: bool | None, why: str | None) -> None:
    ip = ipaddress.ip_address(address)
    assert refusal(ip, allow_private=False) == why
    expected_with_private = None if private_ok is not None else why
    assert refusal(ip, allow_private=True) == expected_with_private


def test_only_http_and_https_are_fetched() -> None:
    guard = publish.Guard(allow_private=True)
    for url, reason in [("file:///etc/passwd", "file scheme"), ("ftp://example.org/a.jpg", "ftp scheme"),
                        ("gopher://127.0.0.1:70/", "gopher scheme"), ("http:///a.jpg", "no host")]:
        with pytest.raises(publish.Refused, match=reason):
            publish.request("HEAD", url, timeout=1, guard=guard)


def test_a_name_that_resolves_to_loopback_is_refused() -> None:
    with pytest.raises(publish.Refused, match="localhost is a loopback address"):
        publish.request("HEAD", "http://localhost:9/x.jpg", timeout=1, guard=publish.Guard())

