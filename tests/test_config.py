"""config.yaml validation, through `load_config` and through the real command line.

Proves that a minimal config gets the documented defaults with paths resolved against
the config file's folder; that one file holding every kind of mistake is reported in
full, each problem as `config.yaml:LINE: dotted.key: message` on the right line, with
exit 3 and nothing written; that broken, missing and empty files fail cleanly; that
YAML tags cannot run code or slip through; and that sizes parse to the right bytes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syndicate.config import load_config
from syndicate.errors import ConfigError
from syndicate.model import Config
from tests.conftest import SEED, run_cli

MINIMAL_CHANNEL = """\
channels:
  world:
    title: World
    link: https://cn.nytimes.com/world/
"""

# One file with every kind of mistake the spec names; each line below is found by its
# text, never by number, so the file can be edited freely.
BAD_CONFIG = """\
site:
  title: Test archive
  base_url: https://feeds.example.org
  source: articles
  output: feeds
  timezone: Mars/Olympus_Mons
  schedule: "every fifteen minutes"
channels:
  world:
    title: World
    link: https://cn.nytimes.com/world/
    description: first description
    limit: ten
    limt: 5
    include:
      title: "普京|(习近平"
    formats: [rss, xml]
    images: sideways
    max_bytes: lots
    description: second description
  ../x:
    title: Escape
    link: https://cn.nytimes.com/
  index:
    title: Index
    link: https://cn.nytimes.com/
  Business:
    title: Business
    link: https://cn.nytimes.com/business/
  business:
    title: Business again
    link: https://cn.nytimes.com/business/
  china:
    title: China
    link: ftp://cn.nytimes.com/china/
    schedule: "61 * * * *"
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding `needle` (its n-th occurrence)."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(found) >= occurrence, f"{needle!r} not in the YAML text"
    return found[occurrence - 1]


# (needle, occurrence, dotted key, part of the message)
BAD_EXPECTED = [
    ("timezone: Mars", 1, "site.timezone", "unknown time zone 'Mars/Olympus_Mons'"),
    ("schedule: \"every", 1, "site.schedule", "cron expression"),
    ("limit: ten", 1, "channels.world.limit", "expected a positive integer, got 'ten'"),
    ("limt: 5", 1, "channels.world.limt", "unknown key (did you mean 'limit'?)"),
    ("title: \"普京|(", 1, "channels.world.include.title", "bad regular expression"),
    ("formats: [rss, xml]", 1, "channels.world.formats", "unknown format 'xml'"),
    ("images: sideways", 1, "channels.world.images", "expected one of enclosure, inline, both"),
    ("max_bytes: lots", 1, "channels.world.max_bytes", "expected a size"),
    ("description: second", 1, "channels.world.description", "duplicate key"),
    ("../x:", 1, "channels.../x", "safe file name"),
    ("  index:", 1, "channels.index", "reserved name"),
    ("  business:", 1, "channels.business", "same files as channel 'Business'"),
    ("link: ftp://", 1, "channels.china.link", "expected an http(s) URL"),
    ("schedule: \"61", 1, "channels.china.schedule", "cron expression"),
]


def write(folder: Path, text: str) -> Path:
    path = folder / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    """Every problem load_config reports for `path`, as the user sees them."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(p) for p in caught.value.problems]


def load_ok(folder: Path, text: str) -> Config:
    return load_config(write(folder, text))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in tmp_path, so problems name the file as `config.yaml`."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def assert_nothing_written(folder: Path) -> None:
    assert not (folder / "feeds").exists()
    assert not (folder / ".syndicate").exists()


# --- defaults --------------------------------------------------------------------------


def test_minimal_config_gets_the_documented_defaults(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths must not depend on the current folder
    text = "site:\n  base_url: https://feeds.example.org/news\n  source: seeds\n" \
           "  output: public/feeds\n" + MINIMAL_CHANNEL
    config = load_ok(folder, text)

    site = config.site
    assert site.base_url == "https://feeds.example.org/news/"
    assert site.timezone == "UTC"
    assert site.encodings == ("utf-8", "gb18030", "big5")
    assert site.source == (folder / "seeds").resolve()
    assert site.output == (folder / "public" / "feeds").resolve()
    assert site.cache == (folder / ".syndicate").resolve()
    assert site.hub is None
    assert site.probe_enclosures is False
    assert site.schedule is None
    assert config.path == folder / "config.yaml"

    (channel,) = config.channels
    assert channel.id == "world"
    assert channel.title == "World"
    assert channel.link == "https://cn.nytimes.com/world/"
    assert channel.limit == 50
    assert channel.formats == ("rss", "atom", "json")
    assert channel.content == "full"
    assert channel.images == "inline"
    assert channel.max_bytes == 5 * 1024 * 1024
    assert channel.archive == "none"
    assert channel.schedule is None
    assert channel.include.empty and channel.exclude.empty


def test_base_url_with_trailing_slash_is_kept_as_is(tmp_path: Path) -> None:
    config = load_ok(tmp_path, "site:\n  base_url: https://feeds.example.org/\n" + MINIMAL_CHANNEL)
    assert config.site.base_url == "https://feeds.example.org/"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    source, output = tmp_path / "abs-src", tmp_path / "abs-out"
    folder = tmp_path / "conf"
    folder.mkdir()
    config = load_ok(folder, f"site:\n  base_url: https://x.example/\n  source: {source}\n"
                             f"  output: {output}\n" + MINIMAL_CHANNEL)
    assert config.site.source == source.resolve()
    assert config.site.output == output.resolve()


# --- every problem at once ---------------------------------------------------------------


def test_every_problem_is_reported_at_once_with_line_and_key(in_tmp: Path) -> None:
    problems = problems_of(write(in_tmp, BAD_CONFIG))
    for needle, occurrence, key, message in BAD_EXPECTED:
        line = line_of(BAD_CONFIG, needle, occurrence)
        prefix = f"config.yaml:{line}: {key}: "
        hits = [p for p in problems if p.startswith(prefix) and message in p]
        assert hits, f"no {prefix}…{message}… among:\n" + "\n".join(problems)
    assert len(problems) == len(BAD_EXPECTED), "\n".join(problems)


def test_duplicate_key_names_the_first_line(in_tmp: Path) -> None:
    problems = problems_of(write(in_tmp, BAD_CONFIG))
    first = line_of(BAD_CONFIG, "description: first")
    second = line_of(BAD_CONFIG, "description: second")
    assert (f"config.yaml:{second}: channels.world.description: duplicate key "
            f"(first given on line {first})") in problems


@pytest.mark.parametrize("command", ["build", "check"])
def test_cli_lists_every_problem_exits_3_and_writes_nothing(tmp_path: Path, command: str) -> None:
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / SEED.name).write_bytes(SEED.read_bytes())
    write(tmp_path, BAD_CONFIG)
    run = run_cli(command, "-c", "config.yaml", cwd=tmp_path)
    assert run.code == 3, run.err
    assert run.out == ""
    lines = run.err.splitlines()
    assert len(lines) == len(BAD_EXPECTED), run.err
    for needle, occurrence, key, message in BAD_EXPECTED:
        line = line_of(BAD_CONFIG, needle, occurrence)
        # `config.yaml:LINE: key: message`, with a level word (`error: `) before or after the place
        pattern = (rf"^(error: )?config\.yaml:{line}: (error: )?{re.escape(key)}: "
                   rf".*{re.escape(message)}")
        assert any(re.match(pattern, entry) for entry in lines), f"{pattern}\n{run.err}"
    assert_nothing_written(tmp_path)


def test_unknown_top_level_key_gets_a_hint(in_tmp: Path) -> None:
    text = "site:\n  base_url: https://x.example/\nchanels:\n  world:\n    title: W\n" \
           "    link: https://cn.nytimes.com/\n"
    problems = problems_of(write(in_tmp, text))
    line = line_of(text, "chanels:")
    assert f"config.yaml:{line}: chanels: unknown key (did you mean 'channels'?)" in problems
    assert any(": channels: required key is missing" in p for p in problems), problems


def test_unknown_site_key_gets_a_hint(in_tmp: Path) -> None:
    text = "site:\n  base_url: https://x.example/\n  timezon: Asia/Shanghai\n" + MINIMAL_CHANNEL
    problems = problems_of(write(in_tmp, text))
    assert problems == [f"config.yaml:{line_of(text, 'timezon:')}: site.timezon: "
                        "unknown key (did you mean 'timezone'?)"]


def test_bad_entry_in_a_block_list_is_located_on_its_own_line_or_its_key(in_tmp: Path) -> None:
    """The bad entry `xml` is on its own line; the report must point at that line (or at
    the `formats:` key), not at an unrelated neighbouring entry."""
    text = ("site:\n  base_url: https://x.example/\nchannels:\n  world:\n    title: W\n"
            "    link: https://cn.nytimes.com/\n    formats:\n      - rss\n      - atom\n"
            "      - xml\n")
    (problem,) = problems_of(write(in_tmp, text))
    allowed = {line_of(text, "- xml"), line_of(text, "formats:")}
    match = re.match(r"config\.yaml:(\d+): channels\.world\.formats: unknown format 'xml'", problem)
    assert match, problem
    assert int(match.group(1)) in allowed, f"{problem} (expected line {sorted(allowed)})"


# --- broken, missing, empty files ----------------------------------------------------------


def test_yaml_syntax_error_is_one_located_error(tmp_path: Path) -> None:
    text = "site:\n  base_url: https://x.example/\n  title: a: b\n" + MINIMAL_CHANNEL
    write(tmp_path, text)
    run = run_cli("build", "-c", "config.yaml", cwd=tmp_path)
    assert run.code == 3
    line = line_of(text, "title: a: b")
    (message,) = run.err.splitlines()
    assert re.match(rf"^(error: )?config\.yaml:{line}: .*YAML", message), run.err
    assert_nothing_written(tmp_path)


def test_missing_config_file(tmp_path: Path) -> None:
    run = run_cli("build", "-c", "nowhere.yaml", cwd=tmp_path)
    assert run.code == 3
    (message,) = run.err.splitlines()
    assert "nowhere.yaml" in message and "not found" in message
    assert "Traceback" not in run.err
    assert_nothing_written(tmp_path)


def test_default_config_is_looked_for_in_the_current_folder(tmp_path: Path) -> None:
    run = run_cli("build", cwd=tmp_path)
    assert run.code == 3
    assert "config.yaml" in run.err and "not found" in run.err


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"], ids=["empty", "comment", "doc"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 1
    assert "site" in str(caught.value) and "channels" in str(caught.value)
    run = run_cli("build", "-c", "config.yaml", cwd=tmp_path)
    assert run.code == 3 and len(run.err.splitlines()) == 1, run.err
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize("tail", ["", "channels:\n", "channels: {}\n"], ids=["absent", "null", "empty"])
def test_channels_missing(in_tmp: Path, tail: str) -> None:
    text = "site:\n  base_url: https://x.example/\n" + tail
    problems = problems_of(write(in_tmp, text))
    assert len(problems) == 1, problems
    assert re.match(r"config\.yaml:\d+: channels: ", problems[0]), problems


def test_site_missing(in_tmp: Path) -> None:
    problems = problems_of(write(in_tmp, MINIMAL_CHANNEL))
    assert problems == ["config.yaml:1: site: required key is missing"]


def test_required_channel_keys_are_reported_at_the_channels_line(in_tmp: Path) -> None:
    text = ("site:\n  base_url: https://x.example/\nchannels:\n  world:\n"
            "    description: neither title nor link\n    limit: 5\n")
    problems = problems_of(write(in_tmp, text))
    line = line_of(text, "  world:")
    assert sorted(problems) == [f"config.yaml:{line}: channels.world.link: required key is missing",
                                f"config.yaml:{line}: channels.world.title: required key is missing"]


def test_required_site_key_is_reported_at_the_sites_line(in_tmp: Path) -> None:
    text = "site:\n  title: No base URL\n" + MINIMAL_CHANNEL
    problems = problems_of(write(in_tmp, text))
    assert problems == [f"config.yaml:{line_of(text, 'site:')}: site.base_url: required key is missing"]


@pytest.mark.parametrize("cid", ["no", "null"])
def test_channel_ids_that_yaml_reads_as_booleans_are_kept_or_refused(in_tmp: Path, cid: str) -> None:
    """`no` (Norwegian) is a fine channel id; YAML 1.1 reads it as False. The channel must
    keep the id as written (feeds/no.xml) or be refused on its line — never become False."""
    text = f"site:\n  base_url: https://x.example/\nchannels:\n  {cid}:\n    title: T\n" \
           "    link: https://cn.nytimes.com/\n"
    path = write(in_tmp, text)
    try:
        config = load_config(path)
    except ConfigError as e:
        assert any(p.line == line_of(text, f"  {cid}:") for p in e.problems), str(e)
    else:
        assert [c.id for c in config.channels] == [cid]


# --- safe loading ----------------------------------------------------------------------------


def test_python_tags_never_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = (f"site:\n  base_url: https://x.example/\n"
            f"  title: !!python/object/apply:os.system [\"touch {marker}\"]\n"
            f"channels:\n  world:\n    title: !!python/object/apply:os.system [\"touch {marker}\"]\n"
            f"    link: https://cn.nytimes.com/\n")
    write(tmp_path, text)
    run = run_cli("build", "-c", "config.yaml", cwd=tmp_path)
    assert run.code == 3, run.err
    assert not marker.exists()
    assert_nothing_written(tmp_path)


PYTHON_TAGS = {
    "scalar": "site:\n  base_url: https://x.example/\n  title: !!python/name:os.system\n"
              + MINIMAL_CHANNEL,
    "mapping": "site:\n  base_url: https://x.example/\nchannels:\n"
               "  world: !!python/object:types.SimpleNamespace\n"
               "    title: World\n    link: https://cn.nytimes.com/world/\n",
    "sequence": "site:\n  base_url: https://x.example/\nchannels:\n  world:\n    title: W\n"
                "    link: https://cn.nytimes.com/\n    include:\n"
                "      section: !!python/object/apply:os.getcwd [world]\n",
}


@pytest.mark.parametrize("kind", sorted(PYTHON_TAGS))
def test_python_object_tag_is_rejected(tmp_path: Path, kind: str) -> None:
    """Safe loading refuses every !!python/ tag, wherever it is put (safe_load would)."""
    text = PYTHON_TAGS[kind]
    (tmp_path / "articles").mkdir()
    write(tmp_path, text)
    run = run_cli("build", "-c", "config.yaml", cwd=tmp_path)
    assert run.code == 3, f"exit {run.code}; the tag was accepted: {run.err}"
    assert "python/" in run.err
    tag_line = line_of(text, "!!python/")
    assert f"config.yaml:{tag_line}:" in run.err
    assert_nothing_written(tmp_path)


# --- sizes -------------------------------------------------------------------------------------


def config_with_max_bytes(value: str) -> str:
    return ("site:\n  base_url: https://x.example/\nchannels:\n  world:\n    title: W\n"
            f"    link: https://cn.nytimes.com/\n    max_bytes: {value}\n")


@pytest.mark.parametrize(("value", "expected"), [
    ("5MiB", 5 * 1024 * 1024),
    ("500KB", 500_000),
    ("1048576", 1_048_576),
    ('"1048576"', 1_048_576),
    ("2 KiB", 2048),
    ("1.5MiB", 1_572_864),
    ("1mb", 1_000_000),
    ("1GB", 1_000_000_000),
])
def test_sizes_parse_to_bytes(tmp_path: Path, value: str, expected: int) -> None:
    config = load_ok(tmp_path, config_with_max_bytes(value))
    assert config.channels[0].max_bytes == expected


@pytest.mark.parametrize("value", ["lots", "0", "-5", "5 XB", "true", "[1]", '"100B"', "100"])
def test_bad_sizes_are_refused_on_their_line(in_tmp: Path, value: str) -> None:
    """Every budget under 1 KiB is refused alike, whether written `"100B"` or `100`."""
    text = config_with_max_bytes(value)
    problems = problems_of(write(in_tmp, text))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"config.yaml:{line_of(text, 'max_bytes:')}: "
                                  "channels.world.max_bytes: "), problems


# --- the kept node tree (a build's cache holds the parsed YAML) ---------------------------

KEPT_CONFIG = ("site:\n  base_url: https://x.example/\n  title: First title\n  source: articles\n"
               + MINIMAL_CHANNEL)


def loads_yaml(config: Path, *, keep_tree: bool = True) -> tuple[bool, str]:
    """Whether loading `config` in a fresh process imports PyYAML, and the site title
    it reads: the kept tree is what spares a build the import."""
    script = ("import sys; from syndicate.config import load_config; "
              f"c = load_config(sys.argv[1], keep_tree={keep_tree}); "
              "print('yaml' in sys.modules, c.site.title)")
    proc = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True,
                          text=True, timeout=60, check=True)
    imported, title = proc.stdout.strip().split(" ", 1)
    return imported == "True", title


def built(folder: Path, *args: str) -> None:
    (folder / "articles").mkdir(exist_ok=True)
    run = run_cli("build", "-c", "config.yaml", *args, cwd=folder)
    assert run.code == 0, run.err


def test_a_build_keeps_the_tree_and_the_next_one_skips_the_yaml_parser(tmp_path: Path) -> None:
    config = write(tmp_path, KEPT_CONFIG)
    assert loads_yaml(config, keep_tree=False) == (True, "First title")
    assert not (tmp_path / ".syndicate").exists()  # only a build keeps the tree
    built(tmp_path)
    assert loads_yaml(config) == (False, "First title")
    assert loads_yaml(config, keep_tree=False) == (True, "First title")  # check, init, list…


def test_an_edited_config_is_read_again(tmp_path: Path) -> None:
    config = write(tmp_path, KEPT_CONFIG)
    built(tmp_path)
    write(tmp_path, KEPT_CONFIG.replace("First title", "Second title"))
    assert loads_yaml(config) == (True, "Second title")
    # A mistake in the edit is reported on its line, as ever, and the last good feeds stay.
    write(tmp_path, KEPT_CONFIG.replace("  title: First title", "  title: [a"))
    run = run_cli("build", "-c", "config.yaml", cwd=tmp_path)
    assert run.code == 3 and "config.yaml:" in run.err and "YAML" in run.err, run.err


def test_a_damaged_kept_tree_is_parsed_again(tmp_path: Path) -> None:
    config = write(tmp_path, KEPT_CONFIG)
    built(tmp_path)
    [kept] = (tmp_path / ".syndicate").glob("config-tree-*")
    for damage in (b"", b"not a pickle", kept.read_bytes()[:20]):
        kept.write_bytes(damage)
        assert loads_yaml(config) == (True, "First title")
        built(tmp_path)
        assert loads_yaml(config) == (False, "First title")  # kept again


def test_no_tree_is_kept_without_the_cache_or_outside_it(tmp_path: Path) -> None:
    config = write(tmp_path, KEPT_CONFIG)
    built(tmp_path, "--no-cache")
    built(tmp_path, "--no-cache")
    assert list((tmp_path / ".syndicate").glob("config-tree-*")) == []  # (the lock is there)
    # A config whose cache is elsewhere leaves the default folder alone even when it
    # exists (another config's cache, say).
    shutil.rmtree(tmp_path / ".syndicate")
    (tmp_path / ".syndicate").mkdir()
    write(tmp_path, KEPT_CONFIG.replace("  source: articles\n", "  source: articles\n  cache: kept\n"))
    built(tmp_path)
    built(tmp_path)
    assert list((tmp_path / ".syndicate").iterdir()) == []
    assert loads_yaml(config) == (True, "First title")
