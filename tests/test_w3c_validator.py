"""Every feed built from seeds/ and from the messy archive passes the W3C Feed Validation
Service with no errors and no warnings.

The validator is not a Python package and is not vendored here; run it locally (see
docs/validating.md) and point SYNDICATE_FEEDVALIDATOR at a command that takes
`--url URL FILE` pairs and exits 0 only when every file is clean. Without it these
tests are skipped, saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import FIXTURES, ROOT, run_cli, write_config

VALIDATOR = os.environ.get("SYNDICATE_FEEDVALIDATOR", "")
pytestmark = pytest.mark.skipif(
    not VALIDATOR or not shutil.which(VALIDATOR),
    reason="W3C feed validator not available: set SYNDICATE_FEEDVALIDATOR (docs/validating.md)",
)


def _validate(feeds: Path, base_url: str) -> None:
    args: list[str] = []
    for path in sorted(feeds.iterdir()):
        if path.suffix in (".xml", ".atom"):
            args += ["--url", base_url + path.name, str(path)]
    assert args
    proc = subprocess.run([VALIDATOR, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sample_feeds_are_valid(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["site"].update(source=str(ROOT / "seeds"), output=str(tmp_path / "feeds"),
                          cache=str(tmp_path / "cache"))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    assert run_cli("build", "-c", str(tmp_path / "config.yaml")).code == 0
    _validate(tmp_path / "feeds", config["site"]["base_url"])


def test_messy_archive_feeds_are_valid(tmp_path: Path) -> None:
    channel = {"title": "All", "link": "https://cn.nytimes.com/", "limit": 1000}
    config = write_config(tmp_path, {
        "both": {**channel, "images": "both"},
        "enclosure": {**channel, "images": "enclosure"},
        "summary": {**channel, "content": "summary"},
    }, source=str(FIXTURES / "messy"), hub="https://hub.example.org/")
    assert run_cli("build", "-c", str(config)).code == 0
    _validate(tmp_path / "feeds", "https://feeds.example.org/")
