"""The front page and a preview page in a real browser: headless Chromium, started
directly (--dump-dom for the DOM it built, --screenshot for what it drew).

The sample site (seeds/ and config.yaml) is built with its image URLs pointed at small
PNG pictures this test serves on 127.0.0.1, so the pages show real images; every other
host is unreachable for the browser (--host-resolver-rules), so nothing leaves the
machine. Checked: the autodiscovery and subscribe links, the titles (hostile ones from
tests/fixtures/messy as text), that the browser fetched and drew the images, and the
page at phone and desktop widths.

The screenshots in docs/ are refreshed with SYNDICATE_UPDATE_SCREENSHOTS=1; otherwise
they are written to a temporary folder. Skipped, saying why, without /usr/bin/chromium
(Debian: apt-get install chromium fonts-wqy-zenhei; .ci/run does it)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import yaml

from tests.conftest import FIXTURES, ROOT, SEEDS, run_cli, write_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="headless Chromium not installed: no /usr/bin/chromium (Debian: apt-get install "
           "chromium fonts-wqy-zenhei; .ci/run installs it)",
)
DOCS = ROOT / "docs"
SUN = (255, 236, 170)  # the one colour of the test pictures that nothing else on the page uses
PALETTES = [((86, 140, 214), (250, 200, 150), ((60, 110, 90), (30, 70, 55))),
            ((38, 70, 140), (240, 150, 110), ((120, 90, 140), (70, 50, 95))),
            ((110, 170, 200), (230, 230, 200), ((150, 130, 80), (95, 80, 50))),
            ((60, 60, 110), (200, 120, 140), ((50, 90, 110), (25, 55, 70)))]
PROXIED = re.compile(r"https://images\.weserv\.nl/\?url=[^\"\s<>]+")


@dataclass
class Site:
    base: str  # http://127.0.0.1:PORT/
    feeds: Path
    requests: list[str] = field(default_factory=list)  # paths the test server was asked for


# --- pictures -----------------------------------------------------------------------------------


def png(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    raw = b"".join(b"\x00" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def landscape(n: int, width: int = 525, height: int = 360) -> bytes:
    """A small picture: a sky, a sun and two rows of hills, in palette n."""
    top, bottom, (far_colour, near_colour) = PALETTES[n % len(PALETTES)]
    far = [int(height * (0.55 + 0.08 * math.sin(x / width * 6 + n))) for x in range(width)]
    near = [int(height * (0.72 + 0.06 * math.sin(x / width * 9 + 2 * n))) for x in range(width)]
    cx, cy, r = int(width * (0.25 + 0.5 * (n % 2))), int(height * 0.3), int(height * 0.12)
    rows = []
    for y in range(height):
        sky = bytes(int(a + (b - a) * y / height) for a, b in zip(top, bottom, strict=True))
        row = bytearray(sky * width)
        if (y - cy) ** 2 <= r * r:
            half = int(math.sqrt(r * r - (y - cy) ** 2))
            row[(cx - half) * 3:(cx + half) * 3] = bytes(SUN) * (2 * half)
        for x in range(width):
            if y >= near[x]:
                row[x * 3:x * 3 + 3] = bytes(near_colour)
            elif y >= far[x]:
                row[x * 3:x * 3 + 3] = bytes(far_colour)
        rows.append(bytes(row))
    return png(width, height, rows)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows, bytes per pixel) of an 8-bit, non-interlaced RGB(A) PNG, as
    Chromium writes its screenshots."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if tag == b"IHDR":
            width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows, channels


def sun_pixels(screenshot: Path) -> int:
    """How many pixels of a screenshot have the test pictures' sun colour."""
    width, _height, rows, channels = decode_png(screenshot.read_bytes())
    count = 0
    for row in rows:
        for x in range(width):
            r, g, b = row[x * channels:x * channels + 3]
            if abs(r - SUN[0]) <= 6 and abs(g - SUN[1]) <= 6 and abs(b - SUN[2]) <= 6:
                count += 1
    return count


# --- the site and the browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    www = tmp_path_factory.mktemp("www")
    (www / "img").mkdir()
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            requests.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    # The seeds, with each proxied image URL replaced by one of our pictures.
    articles = www / "articles"
    articles.mkdir()
    pictures: dict[str, str] = {}
    for path in sorted(SEEDS.iterdir()):
        text = path.read_text(encoding="utf-8")
        for url in PROXIED.findall(text):
            if url not in pictures:
                pictures[url] = f"{base}img/{len(pictures)}.png"
                (www / "img" / f"{len(pictures) - 1}.png").write_bytes(landscape(len(pictures) - 1))
        (articles / path.name).write_text(PROXIED.sub(lambda m: pictures[m.group(0)], text),
                                          encoding="utf-8")
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["site"].update(source=str(articles), output=str(www / "feeds"), cache=str(www / "cache"))
    (www / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
                                     encoding="utf-8")
    result = run_cli("build", "-c", str(www / "config.yaml"))
    assert result.code == 0, result.err
    yield Site(base, www / "feeds", requests)
    server.shutdown()
    server.server_close()


def chromium(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        command = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-dev-shm-usage",
            "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=zh-CN",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000", f"--user-data-dir={profile}", *args, url,
        ]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def dom(url: str) -> Any:
    """The document as the browser built it (after parsing and loading)."""
    proc = chromium(url, "--dump-dom")
    assert "<html" in proc.stdout, proc.stderr[-2000:]
    return lxml.html.document_fromstring(proc.stdout)


def screenshot(url: str, target: Path, width: int, height: int) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    chromium(url, f"--screenshot={target}", f"--window-size={width},{height}")
    assert target.is_file() and target.stat().st_size > 1000
    return target


def shots(tmp_path: Path, name: str) -> Path:
    """docs/ when refreshing the README's screenshots, a temporary folder otherwise."""
    return DOCS / name if os.environ.get("SYNDICATE_UPDATE_SCREENSHOTS") else tmp_path / name


def feed_titles(feeds: Path, channel: str) -> list[str]:
    items = json.loads((feeds / f"{channel}.json").read_text(encoding="utf-8"))["items"]
    return [item["title"] for item in items]


# --- what the browser built -----------------------------------------------------------------


def test_front_page_in_the_browser(site: Site) -> None:
    doc = dom(f"{site.base}feeds/index.html")
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    channels = config["channels"]
    suffix = {"rss": ".xml", "atom": ".atom", "json": ".json"}
    expected = {f"{cid}{suffix[fmt]}" for cid, c in channels.items()
                for fmt in c.get("formats", ["rss", "atom", "json"])}
    discovered = doc.xpath("//head/link[@rel='alternate']")
    assert {link.get("href") for link in discovered} == expected
    assert all(link.get("type") and link.get("title") for link in discovered)
    assert doc.findtext(".//title") == config["site"]["title"]
    # listed by channel id, whatever the order of the keys in the YAML
    assert [h.text_content() for h in doc.xpath("//main//h2")] == [
        channels[cid]["title"] for cid in sorted(channels)]
    subscribe = {a.get("href") for a in doc.xpath("//nav[@class='feeds']/a")}
    assert subscribe == expected | {f"{cid}.html" for cid in channels}
    assert not doc.xpath("//script")


def test_preview_page_in_the_browser_shows_titles_and_images(site: Site) -> None:
    before = len(site.requests)
    doc = dom(f"{site.base}feeds/world.html")
    assert [h.text_content() for h in doc.xpath("//article//h2")] == feed_titles(site.feeds, "world")
    sources = doc.xpath("//article//figure/img/@src")
    assert sources and all(src.startswith(f"{site.base}img/") for src in sources)
    fetched = {path for path in site.requests[before:] if path.startswith("/img/")}
    assert {src.removeprefix(site.base.rstrip("/")) for src in sources[:3]} <= fetched
    captions = doc.xpath("//article//figcaption")
    assert captions and captions[0].xpath("string(cite)") == "Sergei Guneyev/Sputnik"


def test_hostile_titles_render_as_text_in_the_browser(tmp_path: Path) -> None:
    """The messy archive's titles (`R&D <b>增长</b> "引号" ]]> 😀 עברית`, …), and one whose
    `<!--` would swallow the rest of the page if it reached the markup."""
    shutil.copytree(FIXTURES / "messy", tmp_path / "articles")
    (tmp_path / "articles" / "comment_in_title.txt").write_text(
        "<!--1716600000000-->\n[利率<3% & <!-- 不是注释 --> <script>alert(1)</script>的银行]"
        "(https://cn.nytimes.com/business/20240525/rate-bank/)\n------\n"
        "<section><p>第一段。</p></section>", encoding="utf-8")
    config = write_config(tmp_path, {"all": {"title": "All <b>&amp;</b> \"all\"",
                                             "link": "https://cn.nytimes.com/", "limit": 1000}})
    assert run_cli("build", "-c", str(config)).code == 0
    feeds = tmp_path / "feeds"
    titles = feed_titles(feeds, "all")
    assert "利率<3% & <!-- 不是注释 --> alert(1)的银行" in titles
    assert any("]]>" in t and "&" in t for t in titles)
    index, preview = dom((feeds / "index.html").as_uri()), dom((feeds / "all.html").as_uri())
    for doc in index, preview:
        assert not doc.xpath("//script | //main//b")
        assert "All <b>&amp;</b> \"all\"" in doc.findtext(".//title") + doc.text_content()
    assert [h.text_content() for h in preview.xpath("//article//h2")] == titles
    assert preview.xpath("//article")[-1].xpath(".//p[@class='more']")  # the page ran to its end


# --- what the browser drew ------------------------------------------------------------------


def test_screenshots_show_the_pages_with_their_images(site: Site, tmp_path: Path) -> None:
    """The README's screenshots: the front page at desktop width, a preview on a phone."""
    index = screenshot(f"{site.base}feeds/index.html", shots(tmp_path, "screenshot-index.png"),
                       1200, 900)
    preview = screenshot(f"{site.base}feeds/world.html", shots(tmp_path, "screenshot-preview.png"),
                         400, 860)
    assert png_size(index.read_bytes()) == (1200, 900)
    assert png_size(preview.read_bytes()) == (400, 860)
    assert sun_pixels(preview) > 500  # the first item's picture is on screen, drawn


def test_front_page_on_a_phone(site: Site, tmp_path: Path) -> None:
    shot = screenshot(f"{site.base}feeds/index.html", tmp_path / "index-phone.png", 400, 900)
    width, _height, rows, channels = decode_png(shot.read_bytes())
    assert width == 400
    # The page fills a phone's width with a margin: the rightmost column is background,
    # not cut-off text or a card running off the screen (nothing overflows).
    background = {rows[y][(width - 1) * channels:(width - 1) * channels + 3] for y in range(0, 900, 10)}
    assert len(background) == 1, background


def test_preview_at_desktop_width(site: Site, tmp_path: Path) -> None:
    shot = screenshot(f"{site.base}feeds/world.html", tmp_path / "world-desktop.png", 1200, 900)
    assert png_size(shot.read_bytes()) == (1200, 900)
