"""Shared test helpers: build a site in a temporary folder, run the real command line,
read feeds back with real clients (feedparser for RSS/Atom, a JSON Feed 1.1 schema)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED = SEEDS / "000_14cef026230c64bd.txt"
JSONFEED_SCHEMA = json.loads((FIXTURES / "jsonfeed-1.1.schema.json").read_text())


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> Run:
    """The command as a user types it: a real process, real exit code, real streams."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "syndicate", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def write_config(folder: Path, channels: dict[str, Any], **site: Any) -> Path:
    config = {
        "site": {"title": "Test archive", "base_url": "https://feeds.example.org/",
                 "source": "articles", "output": "feeds", "timezone": "Asia/Shanghai", **site},
        "channels": channels,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path: Path) -> Callable[..., Path]:
    """site(files, channels, **site_keys) → config path. `files` maps a name in the
    articles folder to bytes/str, or to a Path to copy."""

    def make(files: dict[str, bytes | str | Path], channels: dict[str, Any] | None = None,
             **site_keys: Any) -> Path:
        articles = tmp_path / "articles"
        articles.mkdir(exist_ok=True)
        for name, content in files.items():
            target = articles / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            elif isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        channels = channels or {"all": {"title": "All", "link": "https://cn.nytimes.com/"}}
        return write_config(tmp_path, channels, **site_keys)

    return make


def read_feed(path: Path) -> Any:
    """Parse an RSS or Atom file with feedparser and insist it was well-formed."""
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, f"{path.name}: {parsed.get('bozo_exception')}"
    return parsed


def read_json_feed(path: Path) -> dict[str, Any]:
    feed: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(feed, JSONFEED_SCHEMA)
    return feed


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


SHANGHAI = ZoneInfo("Asia/Shanghai")
SECTIONS = ("world", "china", "business", "opinion", "technology", "culture")


def make_articles(folder: Path, count: int, start: int = 0) -> None:
    """Write `count` small articles in the seed format, distinct URLs and capture times,
    spread over sections; numbering from `start` so a later call adds new stories."""
    folder.mkdir(parents=True, exist_ok=True)
    base_ms = 1_704_067_200_000  # 2024-01-01T00:00:00Z
    for n in range(start, start + count):
        section = SECTIONS[n % len(SECTIONS)]
        ms = base_ms + n * 3_600_000
        image = (f'<figure><img src="https://images.weserv.nl/?url=static01.nyt.com/images/{n}.jpg" '
                 f'width="800" height="600"><figcaption>图{n} <cite>摄影</cite></figcaption></figure>'
                 if n % 2 else "")
        # published in Shanghai ten minutes before the capture
        local = datetime.fromtimestamp(ms / 1000 - 600, SHANGHAI)
        text = (f"<!--{ms}-->\n[第{n}篇报道：测试文章](https://cn.nytimes.com/{section}/"
                f"{local:%Y%m%d}/story-{n}/)\n------\n\n<address>REPORTER {n % 7}</address>"
                f'<time datetime="{local:%Y-%m-%d %H:%M:%S}">{local:%Y-%m-%d}</time>{image}'
                f"<section><p>这是第{n}篇文章的第一段。</p><p>第二段写更多的细节，编号{n}。</p></section>"
                f"<footer><p>翻译：纽约时报中文网</p></footer>")
        (folder / f"{n:06d}.txt").write_text(text, encoding="utf-8")
