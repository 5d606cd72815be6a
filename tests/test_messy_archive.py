"""The messy archive, end to end, through the real command line.

Every fixture in tests/fixtures/messy/ (each described, with its expected outcome, in
tests/fixtures/messy_cases.yaml) plus the generated ~3 MB large_file.txt is built once
with `syndicate build`, and each case of the manifest is its own test:

- an `item` appears exactly once in RSS, Atom and JSON Feed (guid / Atom id = its URL),
  read back by real clients, with the exact title, published and updated instants, body
  text, and its images as enclosures in order;
- a `skipped` file is named on a stderr line of its own with the reason; an `ignored`
  file is not mentioned at all; a `merged` capture adds no item; warnings are reported;
- no feed carries active content (script, style, frames, forms, event handlers,
  javascript: or data: URLs), in the raw bytes or in the decoded HTML;
- `syndicate check` reports the same problems and writes nothing; `--strict` fails;
- the bytes written do not depend on the TZ or the locale of the machine.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import feedparser
import lxml.etree
import lxml.html
import pytest
import yaml

from tests.conftest import FIXTURES, Run, read_json_feed, run_cli, tree_bytes, write_config

CASES: dict[str, dict[str, Any]] = yaml.safe_load(
    (FIXTURES / "messy_cases.yaml").read_text(encoding="utf-8"))


def cases(outcome: str, *, having: str | None = None) -> list[str]:
    return [name for name, case in CASES.items()
            if case["outcome"] == outcome and (having is None or having in case)]


ITEMS = cases("item")
SKIPPED = cases("skipped")
IGNORED = cases("ignored")
MERGED = cases("merged")
WARNED = cases("item", having="warning")
WITH_IMAGES = cases("item", having="images")
WITH_UPDATED = cases("item", having="updated")

LINK = "https://cn.nytimes.com/"
# One channel per `images` mode; `all` (images: both) is the one most assertions read.
CHANNELS: dict[str, dict[str, Any]] = {
    "all": {"title": "All", "link": LINK, "limit": 1000, "images": "both"},
    "enclosed": {"title": "Enclosed", "link": LINK, "limit": 1000, "images": "enclosure"},
    "inline": {"title": "Inline", "link": LINK, "limit": 1000, "images": "inline"},
}
FORMATS = ("rss", "atom", "json")
SUFFIX = {"rss": ".xml", "atom": ".atom", "json": ".json"}
FEED_FILES = [(channel, fmt) for channel in CHANNELS for fmt in FORMATS]

# Active content that must never reach a reader, in any output, raw or decoded.
FORBIDDEN = ("<script", "javascript:", "onerror", "onclick", "<iframe", "<object", "<embed",
             "<style", "<form", "data:image")
FORBIDDEN_TAGS = {"script", "style", "iframe", "object", "embed", "form", "input", "frame",
                  "frameset", "applet", "base", "meta", "link"}


def _load_make_messy() -> Any:
    spec = importlib.util.spec_from_file_location("make_messy", FIXTURES / "make_messy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_archive(folder: Path) -> Path:
    """The messy fixtures plus the generated large file, in `folder`/articles."""
    articles = folder / "articles"
    shutil.copytree(FIXTURES / "messy", articles)
    (articles / "large_file.txt").write_bytes(_load_make_messy().large_article_bytes())
    assert {p.relative_to(articles).as_posix() for p in articles.rglob("*") if p.is_file()} \
        == set(CASES), "messy/ and messy_cases.yaml disagree: re-run make_messy.py"
    return articles


def instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, f"{text!r} has no offset"
    return moment


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder` with its bytes and mtime: what "wrote nothing" compares."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass
class Built:
    """One built site and its feeds, each read once and kept."""

    root: Path
    run: Run
    _parsed: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def feeds(self) -> Path:
        return self.root / "feeds"

    def path(self, channel: str, fmt: str) -> Path:
        return self.feeds / f"{channel}{SUFFIX[fmt]}"

    def parsed(self, channel: str, fmt: str) -> Any:
        """feedparser's reading of an RSS/Atom file, or the JSON Feed document. HTML is
        neither sanitized nor rewritten by feedparser here: the tests judge what syndicate
        wrote, not what feedparser would make safe."""
        key = (channel, fmt)
        if key not in self._parsed:
            path = self.path(channel, fmt)
            if fmt == "json":
                self._parsed[key] = read_json_feed(path)
            else:
                # conftest.read_feed, without the sanitizing (bozo does not depend on it):
                # one parse per 3 MB feed instead of two.
                parsed = feedparser.parse(path.read_bytes(), sanitize_html=False,
                                          resolve_relative_uris=False)
                assert not parsed.bozo, f"{path.name}: {parsed.get('bozo_exception')}"
                self._parsed[key] = parsed
        return self._parsed[key]

    def entries(self, channel: str, fmt: str) -> list[Any]:
        feed = self.parsed(channel, fmt)
        return list(feed["items"] if fmt == "json" else feed.entries)

    def matching(self, channel: str, fmt: str, url: str) -> list[Any]:
        return [e for e in self.entries(channel, fmt) if e.get("id") == url]

    def entry(self, channel: str, fmt: str, url: str) -> Any:
        found = self.matching(channel, fmt, url)
        assert len(found) == 1, f"{channel}{SUFFIX[fmt]}: {len(found)} entries with id {url}"
        return found[0]


def content_html(entry: Any, fmt: str) -> str:
    """The full body as the feed carries it, XML/JSON-decoded: content:encoded, Atom
    content, JSON content_html."""
    if fmt == "json":
        return str(entry.get("content_html", ""))
    return "".join(c.value for c in entry.get("content", []))


def lines_about(stderr: str, root: Path, name: str) -> list[str]:
    """stderr lines that start with the file's path: as the user typed the folder
    (relative to the working directory) or absolute."""
    shown = [f"articles/{name}", str(root / "articles" / name)]
    pattern = re.compile("^(?:" + "|".join(map(re.escape, shown)) + r")(?=[:\s]|$)")
    return [line for line in stderr.splitlines() if pattern.match(line)]


def build_site(folder: Path, *, env: dict[str, str] | None = None, **site_keys: Any) -> Run:
    config = write_config(folder, CHANNELS, **{"timezone": "Asia/Shanghai", **site_keys})
    return run_cli("build", "-c", str(config), cwd=folder, env=env)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("messy-build")
    make_archive(root)
    return Built(root, build_site(root))


@dataclass
class Checked:
    """`syndicate check` and `check --strict` on a site that was never built."""

    root: Path
    run: Run
    strict: Run
    before: dict[str, tuple[bytes, int]]  # snapshot of the site folder before both


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    root = tmp_path_factory.mktemp("messy-check")
    make_archive(root)
    config = write_config(root, CHANNELS, timezone="Asia/Shanghai")
    before = snapshot(root)
    run = run_cli("check", "-c", str(config), cwd=root)
    strict = run_cli("check", "--strict", "-c", str(config), cwd=root)
    return Checked(root, run, strict, before)


# --- the build as a whole ---------------------------------------------------------------

def test_build_exits_0_silently(built: Built) -> None:
    assert built.run.code == 0, built.run.err
    assert built.run.out == "", "silent on success unless -v (cron mails any output)"


@pytest.mark.parametrize(("channel", "fmt"), FEED_FILES)
def test_feed_reads_back(built: Built, channel: str, fmt: str) -> None:
    """feedparser reads RSS and Atom without bozo; JSON Feed passes the 1.1 schema."""
    assert built.entries(channel, fmt)


@pytest.mark.parametrize(("channel", "fmt"), FEED_FILES)
def test_every_item_and_nothing_else(built: Built, channel: str, fmt: str) -> None:
    ids = [e.get("id") for e in built.entries(channel, fmt)]
    assert sorted(ids) == sorted(CASES[name]["url"] for name in ITEMS)


# --- items ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ITEMS)
def test_item_once_with_exact_title(built: Built, name: str) -> None:
    case = CASES[name]
    for fmt in FORMATS:
        entry = built.entry("all", fmt, case["url"])
        assert entry["title"] == case["title"], fmt


@pytest.mark.parametrize("name", ITEMS)
def test_item_not_reported_as_skipped(built: Built, name: str) -> None:
    assert not [line for line in lines_about(built.run.err, built.root, name)
                if "skipped" in line.lower()]


@pytest.mark.parametrize("name", ITEMS)
def test_item_published(built: Built, name: str) -> None:
    case = CASES[name]
    expected = instant(case["published"])
    rss = built.entry("all", "rss", case["url"])
    pub_date = parsedate_to_datetime(rss.published)
    assert pub_date.tzinfo is not None, f"pubDate {rss.published!r} needs a numeric zone"
    assert pub_date == expected, f"RSS pubDate {rss.published}"
    atom = built.entry("all", "atom", case["url"])
    assert instant(atom.published) == expected, f"Atom published {atom.published}"
    item = built.entry("all", "json", case["url"])
    assert instant(item["date_published"]) == expected, f"JSON {item['date_published']}"


@pytest.mark.parametrize("name", WITH_UPDATED)
def test_item_updated(built: Built, name: str) -> None:
    case = CASES[name]
    atom = built.entry("all", "atom", case["url"])
    assert instant(atom.updated) == instant(case["updated"])
    item = built.entry("all", "json", case["url"])
    assert instant(item["date_modified"]) == instant(case["updated"])


@pytest.mark.parametrize("name", ITEMS)
def test_item_body(built: Built, name: str) -> None:
    case = CASES[name]
    for fmt in FORMATS:
        body = content_html(built.entry("all", fmt, case["url"]), fmt)
        decoded = html.unescape(body)
        for wanted in case.get("body_contains", []):
            assert wanted in decoded, f"{fmt}: {wanted!r} missing"
        for unwanted in case.get("body_lacks", []):
            assert unwanted not in body and unwanted not in decoded, f"{fmt}: {unwanted!r} present"


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_item_without_any_text_shows_its_title(built: Built, fmt: str) -> None:
    """A file whose body is a page's head with no <body> has no content and no summary:
    every format carries the title as the item's text rather than nothing (an Atom entry
    with neither content nor summary draws the W3C validator's MissingTextualContent)."""
    case = CASES["page_without_body.txt"]
    entry = built.entry("all", fmt, case["url"])
    assert content_html(entry, fmt) == ""
    text = entry.get("content_text") if fmt == "json" else entry.get("summary")
    assert text == case["title"]


@pytest.mark.parametrize("name", WITH_IMAGES)
def test_item_images_as_enclosures(built: Built, name: str) -> None:
    """`images: both`: every image is an enclosure, in document order, typed."""
    case = CASES[name]
    expected = [(image["url"], image["type"]) for image in case["images"]]
    atom = built.entry("all", "atom", case["url"])
    assert [(link.href, link.get("type")) for link in atom.links if link.rel == "enclosure"] \
        == expected
    item = built.entry("all", "json", case["url"])
    assert [(a["url"], a["mime_type"]) for a in item.get("attachments", [])] == expected
    # RSS allows one <enclosure>: the first image; Media RSS carries them all.
    rss = built.entry("all", "rss", case["url"])
    assert [(e.href, e.type) for e in rss.enclosures] == expected[:1]
    assert [(m["url"], m["type"]) for m in rss.get("media_content", [])] == expected


@pytest.mark.parametrize("name", WITH_IMAGES)
def test_item_images_follow_channel_mode(built: Built, name: str) -> None:
    """No image shown twice: `enclosure` takes images out of the body, `inline` keeps
    them in the body and encloses at most the lead image, `both` does both."""
    case = CASES[name]
    urls = [image["url"] for image in case["images"]]

    def atom_view(channel: str) -> tuple[list[str], str]:
        entry = built.entry(channel, "atom", case["url"])
        enclosed = [link.href for link in entry.links if link.rel == "enclosure"]
        return enclosed, html.unescape(content_html(entry, "atom"))

    enclosed, body = atom_view("enclosed")
    assert enclosed == urls
    assert "<img" not in body
    enclosed, body = atom_view("inline")
    assert enclosed in ([], urls[:1])
    assert all(url in body for url in urls)
    enclosed, body = atom_view("all")
    assert enclosed == urls
    assert all(url in body for url in urls)


# --- skipped, ignored, merged, warned ---------------------------------------------------

@pytest.mark.parametrize("name", SKIPPED)
def test_skipped_file_named_with_reason(built: Built, name: str) -> None:
    lines = lines_about(built.run.err, built.root, name)
    assert lines, f"{name} not named in stderr:\n{built.run.err}"
    reason = CASES[name]["reason"].lower()
    assert any(reason in line.lower() for line in lines), lines


@pytest.mark.parametrize("name", IGNORED)
def test_ignored_file_not_mentioned(built: Built, checked: Checked, name: str) -> None:
    assert name not in built.run.err
    assert name not in checked.run.err


@pytest.mark.parametrize("name", MERGED)
def test_merged_capture_adds_no_item(built: Built, name: str) -> None:
    winner = CASES[CASES[name]["merged_into"]]
    for channel, fmt in FEED_FILES:
        assert len(built.matching(channel, fmt, winner["url"])) == 1, f"{channel}{SUFFIX[fmt]}"
    # The earlier capture is still an article: only its date is kept, it is not skipped.
    assert not [line for line in lines_about(built.run.err, built.root, name)
                if "skipped" in line.lower()]
    atom = built.entry("all", "atom", winner["url"])
    assert instant(atom.published) == instant(winner["published"])


@pytest.mark.parametrize("name", WARNED)
def test_warning_on_the_file_line(built: Built, name: str) -> None:
    lines = lines_about(built.run.err, built.root, name)
    keyword = CASES[name]["warning"].lower()
    assert any(keyword in line.lower() for line in lines), f"{keyword!r} not in {lines}"


# --- nothing active reaches a reader ----------------------------------------------------

def decoded_strings(path: Path) -> Iterator[str]:
    """Every text and attribute value in a feed, decoded from XML or JSON."""
    if path.suffix == ".json":
        stack: list[Any] = [json.loads(path.read_text(encoding="utf-8"))]
        while stack:
            value = stack.pop()
            if isinstance(value, str):
                yield value
            elif isinstance(value, dict):
                stack.extend(value.keys())
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
        return
    root = lxml.etree.fromstring(path.read_bytes(), lxml.etree.XMLParser(huge_tree=True))
    for element in root.iter():
        yield from (element.text or "", element.tail or "")
        yield from map(str, element.attrib.values())


def active_markup(fragment: str) -> list[str]:
    """What an HTML parser (a reader's web view) would find active in `fragment`."""
    if "<" not in fragment:
        return []
    found = []
    for element in lxml.html.fragment_fromstring(fragment, create_parent="div").iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag.lower() in FORBIDDEN_TAGS:
            found.append(f"<{element.tag}>")
        for attribute, value in element.attrib.items():
            squeezed = re.sub(r"[\s\x00-\x1f]+", "", value).lower()
            if attribute.lower().startswith("on") or attribute.lower() == "style":
                found.append(f"{element.tag} {attribute}=")
            if squeezed.startswith(("javascript:", "vbscript:", "data:")):
                found.append(f"{element.tag} {attribute}={value[:30]}")
    return found


@pytest.mark.parametrize(("channel", "fmt"), FEED_FILES)
def test_no_active_content(built: Built, channel: str, fmt: str) -> None:
    path = built.path(channel, fmt)
    raw = path.read_bytes().decode("utf-8").lower()
    assert [f for f in FORBIDDEN if f in raw] == []
    for text in decoded_strings(path):
        decoded = text.lower()
        twice = html.unescape(decoded)  # character references inside the HTML, too
        assert [f for f in FORBIDDEN if f in decoded or f in twice] == [], text[:200]
        assert active_markup(text) == [], text[:200]


# --- syndicate check --------------------------------------------------------------------

def test_check_exits_0_and_writes_nothing(checked: Checked) -> None:
    assert checked.run.code == 0, checked.run.err
    assert not (checked.root / "feeds").exists()
    assert not (checked.root / ".syndicate").exists()
    assert snapshot(checked.root) == checked.before


def test_check_strict_exits_1(checked: Checked) -> None:
    assert checked.strict.code == 1, checked.strict.err
    assert snapshot(checked.root) == checked.before


def test_check_reports_what_build_reports(built: Built, checked: Checked) -> None:
    assert sorted(checked.run.err.splitlines()) == sorted(built.run.err.splitlines())


@pytest.mark.parametrize("name", SKIPPED)
def test_check_names_skipped_file_once(checked: Checked, name: str) -> None:
    lines = lines_about(checked.run.err, checked.root, name)
    assert len(lines) == 1, lines
    assert CASES[name]["reason"].lower() in lines[0].lower()


def test_check_one_line_per_problem_file(checked: Checked) -> None:
    err = checked.run.err
    assert err.strip(), "check reported no problems at all"
    named = {name: lines_about(err, checked.root, name) for name in CASES}
    about_some_file = [line for lines in named.values() for line in lines]
    assert sorted(about_some_file) == sorted(err.splitlines()), "lines naming no file"
    assert {name: len(lines) for name, lines in named.items() if len(lines) > 1} == {}


def test_check_leaves_built_feeds_alone(built: Built) -> None:
    before = snapshot(built.feeds)
    run = run_cli("check", "-c", str(built.root / "config.yaml"), cwd=built.root)
    assert run.code == 0, run.err
    assert snapshot(built.feeds) == before


# --- same bytes whatever the machine's TZ and locale ------------------------------------

ENVIRONMENTS = {
    "baseline": {"TZ": "UTC", "LC_ALL": "C"},
    "tz": {"TZ": "America/Chicago", "LC_ALL": "C"},
    # zh_CN.UTF-8 may not be installed; Python still sees LC_ALL and acts on it.
    "locale": {"TZ": "UTC", "LC_ALL": "zh_CN.UTF-8"},
}


@pytest.fixture(scope="module")
def env_builds(built: Built) -> dict[str, dict[str, bytes]]:
    """The same archive built under each environment, each into its own output folder."""
    def build_in(name: str) -> dict[str, bytes]:
        folder = built.root / f"env-{name}"
        folder.mkdir()
        run = build_site(folder, env=ENVIRONMENTS[name], source=str(built.root / "articles"))
        assert run.code == 0, run.err
        return tree_bytes(folder / "feeds")

    # Separate sites (own output, own cache and lock), so the builds may run side by side.
    with ThreadPoolExecutor() as pool:
        outputs = dict(zip(ENVIRONMENTS, pool.map(build_in, ENVIRONMENTS), strict=True))
    # the feeds, a preview page per channel, index.html and index.opml
    assert len(outputs["baseline"]) == len(FEED_FILES) + len(CHANNELS) + 2
    return outputs


@pytest.mark.parametrize("varied", ["tz", "locale"])
def test_bytes_independent_of_environment(env_builds: dict[str, dict[str, bytes]],
                                          varied: str) -> None:
    baseline, other = env_builds["baseline"], env_builds[varied]
    assert sorted(other) == sorted(baseline)
    differing = [name for name in baseline if other[name] != baseline[name]]
    assert differing == [], f"{ENVIRONMENTS[varied]} changes {differing}"
