"""Golden files: the feeds of a three-article channel, byte for byte, in each format.

The expected files in tests/golden/expected/ were reviewed by eye. After an intended
change, regenerate them with `SYNDICATE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`,
read the diff, and commit it with the reason."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import read_feed, read_json_feed, run_cli, tree_bytes

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("golden")
    config = yaml.safe_load((GOLDEN / "config.yaml").read_text(encoding="utf-8"))
    config["site"]["source"] = str(GOLDEN / "articles")
    config["site"]["output"] = str(folder / "out")
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = run_cli("build", "-c", str(folder / "config.yaml"))
    assert result.code == 0, result.err
    if os.environ.get("SYNDICATE_UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN / "expected", ignore_errors=True)
        shutil.copytree(folder / "out", GOLDEN / "expected")
    return folder / "out"


@pytest.mark.parametrize("name", ["golden.xml", "golden.atom", "golden.json",
                                  "golden.html", "index.html", "index.opml"])
def test_matches_reviewed_output(built: Path, name: str) -> None:
    expected = GOLDEN / "expected" / name
    assert (built / name).read_bytes() == expected.read_bytes(), (
        f"{name} differs from the reviewed golden file; if the change is intended, "
        "regenerate with SYNDICATE_UPDATE_GOLDEN=1 and review the diff")


def test_no_other_files(built: Path) -> None:
    assert sorted(tree_bytes(built)) == ["golden.atom", "golden.html", "golden.json", "golden.xml",
                                         "index.html", "index.opml"]


def test_golden_files_read_back(built: Path) -> None:
    rss = read_feed(GOLDEN / "expected" / "golden.xml")
    atom = read_feed(GOLDEN / "expected" / "golden.atom")
    json_feed = read_json_feed(GOLDEN / "expected" / "golden.json")
    titles = ["普京访华想从习近平那里得到什么", "观点：我们的城市需要更多长椅",
              "利率<3%：一家地方小银行的存款保卫战"]
    assert [e.title for e in rss.entries] == titles
    assert [e.title for e in atom.entries] == titles
    assert [i["title"] for i in json_feed["items"]] == titles
