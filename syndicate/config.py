"""config.yaml → Config. Every problem is collected with file:line and dotted key, then
raised together as one ConfigError before anything is written.

The YAML is read as a node tree (yaml.compose with the safe loader) rather than with
safe_load, because nodes keep their line numbers and let us see duplicate keys, which
safe_load silently resolves to the last one.

A build keeps that tree (not the checked config: paths and time zones are checked
again every time) in the cache folder, keyed by the config's bytes, and a build of the
same config takes it from there: cron's every-few-minutes build of an unchanged config
then never imports PyYAML, whose import alone costs 13-15 ms (see load_config).
"""

from __future__ import annotations

import codecs
import fnmatch
import hashlib
import importlib.util
import os
import pickle
import re
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from syndicate import __version__
from syndicate.errors import ConfigError, ConfigProblem
from syndicate.model import FORMATS, Channel, Config, Rules, Site
from syndicate.schedule import check as schedule_problem

if TYPE_CHECKING:
    import yaml

PLACEHOLDER_URL = "https://feeds.example.org/"  # what `init` writes for site.base_url, to edit

# Names that are not safe as a feed's file stem: Windows device names (feeds get copied
# to other machines), and "index", which would collide with index.html / index.opml.
RESERVED_IDS = {"index", "con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {
    f"lpt{i}" for i in range(10)
}
CHANNEL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$", re.IGNORECASE)
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
              "gb": 1000**3, "gib": 1024**3}
LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$")

SITE_KEYS = {"title", "base_url", "source", "output", "timezone", "hub", "encodings", "cache",
             "probe_enclosures", "probe_private", "schedule"}
CHANNEL_KEYS = {"title", "link", "description", "language", "include", "exclude", "limit",
                "formats", "content", "images", "max_bytes", "archive", "schedule"}
RULE_KEYS = {"section", "url", "title", "author"}


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class _Node:
    """A plain value with the line it came from, and its children for mappings."""

    __slots__ = ("key_lines", "line", "value")

    def __init__(self, value: Any, line: int, key_lines: dict[str, int] | None = None) -> None:
        self.value = value
        self.line = line
        self.key_lines = key_lines or {}


class _Reader:
    """Collects problems while turning YAML nodes into checked values."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[ConfigProblem] = []

    def problem(self, line: int, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, line, key, message))

    # --- YAML nodes → _Node trees -------------------------------------------------------

    def tree(self, node: yaml.Node, loader: yaml.SafeLoader, path: str) -> _Node:
        import yaml  # imported by _parse, the only caller

        line = node.start_mark.line + 1
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
            # The safe loader refuses such tags on scalars; on mappings and lists we must.
            self.problem(line, path, f"YAML tag {node.tag} is not allowed")
            return _Node(None, line)
        if isinstance(node, yaml.MappingNode):
            values: dict[str, _Node] = {}
            key_lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                # Keys are taken as written: YAML 1.1 would read a channel named `no` as False.
                name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                full = f"{path}.{name}" if path else name
                if name in values:
                    self.problem(key_line, full,
                                 f"duplicate key (first given on line {key_lines[name]})")
                    continue
                values[name] = self.tree(value_node, loader, full)
                key_lines[name] = key_line
            return _Node(values, line, key_lines)
        if isinstance(node, yaml.SequenceNode):
            return _Node([self.tree(n, loader, path) for n in node.value], line)
        return _Node(loader.construct_object(node, deep=True), line)

    # --- typed getters: each returns a usable default after recording a problem ----------

    def mapping(self, node: _Node | None, key: str, allowed: set[str]) -> dict[str, _Node]:
        if node is None or node.value is None:
            return {}
        if not isinstance(node.value, dict):
            self.problem(node.line, key, f"expected a mapping, got {_show(node.value)}")
            return {}
        for name in sorted(set(node.value) - allowed):
            full = f"{key}.{name}" if key else name
            hint = _closest(name, allowed)
            self.problem(node.key_lines[name], full,
                         "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""))
        return cast(dict[str, _Node], node.value)

    def text(self, node: _Node | None, key: str, default: str | None = None,
             required: bool = False, parent_line: int = 0) -> str | None:
        if node is None or node.value is None:
            if required:
                self.problem(parent_line, key, "required key is missing")
            return default
        if isinstance(node.value, bool) or not isinstance(node.value, (str, int, float)):
            self.problem(node.line, key, f"expected text, got {_show(node.value)}")
            return default
        value = str(node.value).strip()
        if required and not value:
            self.problem(node.line, key, "must not be empty")
            return default
        return value

    def choice(self, node: _Node | None, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.text(node, key, default)
        if value not in options:
            assert node is not None
            self.problem(node.line, key, f"expected one of {', '.join(options)}, got {_show(node.value)}")
            return default
        return value

    def flag(self, node: _Node | None, key: str, default: bool) -> bool:
        if node is None or node.value is None:
            return default
        if not isinstance(node.value, bool):
            self.problem(node.line, key, f"expected true or false, got {_show(node.value)}")
            return default
        return node.value

    def positive_int(self, node: _Node | None, key: str, default: int) -> int:
        if node is None or node.value is None:
            return default
        if isinstance(node.value, bool) or not isinstance(node.value, int) or node.value < 1:
            self.problem(node.line, key, f"expected a positive integer, got {_show(node.value)}")
            return default
        return node.value

    def text_list(self, node: _Node | None, key: str) -> tuple[str, ...]:
        """A string, or a list of strings (YAML users write both)."""
        return tuple(value for value, _line in self.located_list(node, key))

    def located_list(self, node: _Node | None, key: str) -> list[tuple[str, int]]:
        """Like text_list, with the line of each entry, so a bad one is named where it is."""
        if node is None or node.value is None:
            return []
        items = node.value if isinstance(node.value, list) else [node]
        out: list[tuple[str, int]] = []
        for item in items:
            value = self.text(item, key)
            if value:
                out.append((value, item.line))
        return out

    def url(self, node: _Node | None, key: str, required: bool = False,
            parent_line: int = 0) -> str | None:
        value = self.text(node, key, required=required, parent_line=parent_line)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            assert node is not None
            self.problem(node.line, key, f"expected an http(s) URL, got {_show(node.value)}")
            return None
        return value


def load_config(path: Path | str, *, keep_tree: bool = False) -> Config:
    """Read and check a config file. Raises ConfigError listing every problem found.
    keep_tree (a build that uses its cache): take the YAML's node tree from the cache
    when it holds the tree of these very bytes, and put it there when it does not (see
    the module docstring)."""
    path = Path(path).absolute()
    name = str(path.name) if path.parent == Path.cwd() else str(path)
    reader = _Reader(name)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(name, 0, "", "config file not found "
                                         "(create one with `syndicate init`)")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([ConfigProblem(name, 0, "", f"cannot read config file: {e}")]) from e
    kept = _KeptTree(path, data) if keep_tree else None
    tree = kept.load() if kept else None
    parsed = tree is None
    if tree is None:
        tree = _parse(text, reader, name)
    if not isinstance(tree.value, dict):
        raise ConfigError([ConfigProblem(name, tree.line, "",
                                         "expected a mapping with `site` and `channels`")])
    top = reader.mapping(tree, "", {"site", "channels"})
    site = _site(reader, top.get("site"), path.parent, tree.line, tree.key_lines.get("site", 0))
    channels = _channels(reader, top.get("channels"), tree.line)
    if reader.problems:
        raise ConfigError(reader.problems)
    assert site is not None
    if kept and parsed and site.cache == kept.folder:  # (elsewhere, that folder is not ours)
        kept.store(tree)
    return Config(path=path, site=site, channels=channels)


def _parse(text: str, reader: _Reader, name: str) -> _Node:
    """The YAML's node tree; problems of the tree itself (tags, duplicate keys) go to
    `reader`, a file that is not YAML raises ConfigError."""
    import yaml  # 13-15 ms: only when the tree is not kept (see the module docstring)

    # libyaml's parser when PyYAML was built with it (its wheels are), else the
    # pure-Python one: the same nodes and marks, composed many times faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        root = loader.get_single_node()
        return reader.tree(root, loader, "") if root is not None else _Node(None, 1)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        raise ConfigError([ConfigProblem(name, line, "", f"not valid YAML: {e.problem or e}")]) from e
    except yaml.YAMLError as e:
        raise ConfigError([ConfigProblem(name, 0, "", f"not valid YAML: {e}")]) from e
    finally:
        loader.dispose()


class _KeptTree:
    """A config's node tree, kept in the default cache folder (`.syndicate` beside the
    config) under a key made of the config's bytes and of the code that made the tree
    (this module, PyYAML).
    It is written there only when that folder is the config's cache (a config that
    puts its cache elsewhere cannot be found without parsing it, and that folder is not
    its to write in). Anything wrong with the file (missing, damaged, another key)
    means parsing the YAML again."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.folder = (path.parent / ".syndicate").resolve()
        self.file = self.folder / f"config-tree-{path.name}.pickle"
        # The code that makes the tree: this module and PyYAML (found without importing
        # it, 0.15 ms), by their files' size and time, which an upgrade changes.
        yaml_spec = importlib.util.find_spec("yaml")
        code = [__file__] + ([yaml_spec.origin] if yaml_spec and yaml_spec.origin else [])
        stamps = [f"{st.st_size}:{st.st_mtime_ns}".encode() for st in map(os.stat, code)]
        self.key = hashlib.sha256(b"\0".join([__version__.encode(), *stamps, data])).hexdigest()

    def load(self) -> _Node | None:
        try:
            key, tree = pickle.loads(self.file.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError,
                TypeError, ValueError, IndexError):  # (as pipeline._unpickled_article)
            return None
        return tree if key == self.key and isinstance(tree, _Node) else None

    def store(self, tree: _Node) -> None:
        temporary = self.file.with_name(f".{self.file.name}.{os.getpid()}")
        try:
            self.folder.mkdir(exist_ok=True)  # the build's cache folder: it makes it next
            temporary.write_bytes(pickle.dumps((self.key, tree), protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(temporary, self.file)
        except OSError:
            temporary.unlink(missing_ok=True)  # a read-only folder: the YAML is parsed each time


def _site(r: _Reader, node: _Node | None, folder: Path, top_line: int,
          key_line: int) -> Site | None:
    if node is None:
        r.problem(top_line, "site", "required key is missing")
        return None
    line = key_line or node.line  # missing keys are reported at `site:` itself
    m = r.mapping(node, "site", SITE_KEYS)
    title = r.text(m.get("title"), "site.title", "syndicate feeds")
    base_url = r.url(m.get("base_url"), "site.base_url", required=True, parent_line=line)
    timezone = r.text(m.get("timezone"), "site.timezone", "UTC") or "UTC"
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        node_tz = m["timezone"]
        r.problem(node_tz.line, "site.timezone",
                  f"unknown time zone {timezone!r} (use an IANA name such as Asia/Shanghai)")
        timezone = "UTC"
    located = r.located_list(m.get("encodings"), "site.encodings")
    encodings = tuple(enc for enc, _ in located) or ("utf-8", "gb18030", "big5")
    for enc, enc_line in located:
        try:
            codecs.lookup(enc)
        except LookupError:
            r.problem(enc_line, "site.encodings", f"unknown encoding {enc!r}")
    hub = r.url(m.get("hub"), "site.hub")
    schedule = _schedule(r, m.get("schedule"), "site.schedule")

    def where(key: str, default: str) -> Path:
        value = r.text(m.get(key), f"site.{key}", default) or default
        p = Path(value).expanduser()
        return (p if p.is_absolute() else folder / p).resolve()

    source, output = where("source", "articles"), where("output", "feeds")
    cache = where("cache", ".syndicate")
    if output == source or source.is_relative_to(output):
        r.problem(m["output"].line if "output" in m else line, "site.output",
                  "must not be the source folder or contain it (feeds would be mixed with articles)")
    return Site(
        title=title or "syndicate feeds",
        base_url=(base_url or "https://example.invalid/").rstrip("/") + "/",
        source=source, output=output, cache=cache, timezone=timezone, hub=hub,
        encodings=tuple(e.lower() for e in encodings),
        probe_enclosures=r.flag(m.get("probe_enclosures"), "site.probe_enclosures", False),
        probe_private=r.flag(m.get("probe_private"), "site.probe_private", False),
        schedule=schedule,
    )


def _channels(r: _Reader, node: _Node | None, top_line: int) -> tuple[Channel, ...]:
    if node is None or node.value is None:
        r.problem(node.line if node else top_line, "channels",
                  "required key is missing (declare at least one channel)")
        return ()
    if not isinstance(node.value, dict):
        r.problem(node.line, "channels", f"expected a mapping of channel ids, got {_show(node.value)}")
        return ()
    if not node.value:
        r.problem(node.line, "channels", "declare at least one channel")
        return ()
    channels: list[Channel] = []
    seen_files: dict[str, str] = {}
    for cid, cnode in cast(dict[str, _Node], node.value).items():
        key = f"channels.{cid}"
        id_line = node.key_lines[cid]
        if not CHANNEL_ID.match(cid) or cid.lower() in RESERVED_IDS:
            r.problem(id_line, key, "channel id must be a safe file name: letters, digits, '-' "
                      "and '_', at most 64, not a reserved name such as 'index'")
            continue
        # Case-insensitive file systems would make World.xml and world.xml one file.
        if cid.lower() in seen_files:
            r.problem(id_line, key, f"writes the same files as channel {seen_files[cid.lower()]!r}")
            continue
        seen_files[cid.lower()] = cid
        channel = _channel(r, cid, cnode, key, id_line)
        if channel is not None:
            channels.append(channel)
    return tuple(channels)


def _channel(r: _Reader, cid: str, node: _Node, key: str, id_line: int) -> Channel | None:
    if not isinstance(node.value, dict):
        r.problem(node.line, key, f"expected a mapping, got {_show(node.value)}")
        return None
    m = r.mapping(node, key, CHANNEL_KEYS)
    title = r.text(m.get("title"), f"{key}.title", required=True, parent_line=id_line)
    link = r.url(m.get("link"), f"{key}.link", required=True, parent_line=id_line)
    language = r.text(m.get("language"), f"{key}.language")
    if language and not LANGUAGE.match(language):
        r.problem(m["language"].line, f"{key}.language",
                  f"expected a language tag such as zh-CN, got {language!r}")
    located = r.located_list(m.get("formats"), f"{key}.formats")
    formats = tuple(fmt for fmt, _ in located) if "formats" in m else FORMATS
    for fmt, fmt_line in located:
        if fmt not in FORMATS:
            r.problem(fmt_line, f"{key}.formats",
                      f"unknown format {fmt!r} (expected rss, atom or json)")
    if not formats:
        r.problem(m["formats"].line, f"{key}.formats", "must name at least one format")
    return Channel(
        id=cid,
        title=title or cid,
        link=link or "https://example.invalid/",
        description=r.text(m.get("description"), f"{key}.description") or title or cid,
        language=language,
        include=_rules(r, m.get("include"), f"{key}.include"),
        exclude=_rules(r, m.get("exclude"), f"{key}.exclude"),
        limit=r.positive_int(m.get("limit"), f"{key}.limit", 50),
        formats=tuple(f for f in dict.fromkeys(formats) if f in FORMATS),
        content=cast(Any, r.choice(m.get("content"), f"{key}.content", ("full", "summary"), "full")),
        images=cast(Any, r.choice(m.get("images"), f"{key}.images",
                                  ("enclosure", "inline", "both"), "inline")),
        max_bytes=_size(r, m.get("max_bytes"), f"{key}.max_bytes"),
        archive=cast(Any, r.choice(m.get("archive"), f"{key}.archive", ("none", "monthly"), "none")),
        schedule=_schedule(r, m.get("schedule"), f"{key}.schedule"),
    )


def _rules(r: _Reader, node: _Node | None, key: str) -> Rules:
    m = r.mapping(node, key, RULE_KEYS)
    patterns: list[re.Pattern[str]] = []
    for text, line in r.located_list(m.get("title"), f"{key}.title"):
        try:
            patterns.append(re.compile(text))
        except re.error as e:
            r.problem(line, f"{key}.title", f"bad regular expression {text!r}: {e}")
    located = r.located_list(m.get("url"), f"{key}.url")
    globs = tuple(glob for glob, _ in located)
    for glob, line in located:
        try:
            re.compile(fnmatch.translate(glob))
        except re.error as e:  # e.g. an unbalanced "[" that translate passes through
            r.problem(line, f"{key}.url", f"bad URL pattern {glob!r}: {e}")
    return Rules(
        sections=tuple(s.lower() for s in r.text_list(m.get("section"), f"{key}.section")),
        url_globs=globs,
        title_patterns=tuple(patterns),
        authors=tuple(a.casefold() for a in r.text_list(m.get("author"), f"{key}.author")),
    )


def _size(r: _Reader, node: _Node | None, key: str) -> int:
    default = 5 * 1024 * 1024
    if node is None or node.value is None:
        return default
    if isinstance(node.value, int) and not isinstance(node.value, bool) and node.value > 0:
        size = node.value
    else:
        match = SIZE.match(str(node.value)) if isinstance(node.value, str) else None
        if not match:
            r.problem(node.line, key, f"expected a size such as 5MiB or 500KB, got {_show(node.value)}")
            return default
        size = int(float(match.group(1)) * SIZE_UNITS[(match.group(2) or "b").lower()])
    if size < 1024:
        r.problem(node.line, key, f"a feed budget under 1 KiB cannot hold one item, got {node.value!r}")
        return default
    return size


def _schedule(r: _Reader, node: _Node | None, key: str) -> str | None:
    value = r.text(node, key)
    if not value:
        return None
    reason = schedule_problem(value)
    if reason:
        assert node is not None
        r.problem(node.line, key, reason)
        return None
    return value


def _show(value: Any) -> str:
    if isinstance(value, _Node):
        value = value.value
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _closest(name: str, options: set[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, sorted(options), n=1)
    return found[0] if found else None
