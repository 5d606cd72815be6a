"""The repository's feeds/ is exactly what `syndicate build` makes of seeds/ with
config.yaml, and building again changes no byte and no mtime."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, read_feed, read_json_feed, run_cli, tree_bytes


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fresh")
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["site"]["source"] = str(ROOT / "seeds")
    config["site"]["output"] = str(folder / "feeds")
    config["site"]["cache"] = str(folder / "cache")
    # safe_dump sorts the keys, channels included: the output must not depend on their order
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = run_cli("build", "-c", str(folder / "config.yaml"))
    assert result.code == 0, result.err
    return folder


def test_repository_feeds_equal_a_fresh_build(fresh: Path) -> None:
    committed, built = tree_bytes(ROOT / "feeds"), tree_bytes(fresh / "feeds")
    assert sorted(committed) == sorted(built)
    stale = [name for name in built if committed[name] != built[name]]
    assert not stale, f"feeds/ is stale; run `syndicate build` and commit: {stale}"


def test_second_build_changes_nothing(fresh: Path) -> None:
    # every file, the archive documents in feeds/<id>/ too
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (fresh / "feeds").rglob("*") if p.is_file()}
    result = run_cli("build", "-v", "-c", str(fresh / "config.yaml"))
    assert result.code == 0, result.err
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (fresh / "feeds").rglob("*") if p.is_file()}
    assert after == before
    assert " 0 written, " in result.out


def test_every_sample_feed_reads_back(fresh: Path) -> None:
    feeds = fresh / "feeds"
    for path in sorted(feeds.iterdir()):
        if path.suffix == ".json":
            assert read_json_feed(path)["items"]
        elif path.suffix in (".xml", ".atom"):  # not the site pages (tests/test_site_pages.py)
            assert read_feed(path).entries


def test_sample_channels_select_what_they_declare(fresh: Path) -> None:
    feeds = fresh / "feeds"
    world = read_feed(feeds / "world.xml")
    assert {e.tags[0].term for e in world.entries} == {"world"}
    business = read_feed(feeds / "china-business.atom")
    assert len(business.entries) == 4  # limit: 4
    assert {e.tags[0].term for e in business.entries} <= {"china", "business"}
    headlines = read_feed(feeds / "headlines.xml")
    assert len(headlines.entries) == 10
    assert "opinion" not in {e.tags[0].term for e in headlines.entries}
    assert not (feeds / "headlines.atom").exists()  # formats: [rss, json]
    every = read_feed(feeds / "all.xml")
    ids = [e.id for e in every.entries]
    assert len(ids) == len(set(ids)) == 14  # 15 files, one story captured twice
    published = [e.published_parsed for e in every.entries]
    assert published == sorted(published, reverse=True)
