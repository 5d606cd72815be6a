"""Which files a build reads: folders reached through symbolic links are read like any
other, each folder once however many links lead to it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import make_articles, run_cli, write_config

CHANNELS = {"all": {"title": "All", "link": "https://cn.nytimes.com/", "limit": 50}}


def _item_urls(folder: Path) -> list[str]:
    items = json.loads((folder / "feeds" / "all.json").read_text(encoding="utf-8"))["items"]
    return [item["id"] for item in items]


def test_linked_folders_are_read_once_and_a_loop_ends(tmp_path: Path) -> None:
    make_articles(tmp_path / "articles" / "2024", 3)
    make_articles(tmp_path / "disk2" / "2025", 2, start=10)
    (tmp_path / "articles" / "2025").symlink_to(tmp_path / "disk2" / "2025")  # another disk
    (tmp_path / "articles" / "2024" / "again").symlink_to(tmp_path / "articles")  # a loop
    (tmp_path / "articles" / "same-2024").symlink_to(tmp_path / "articles" / "2024")
    write_config(tmp_path, CHANNELS)
    result = run_cli("build", "-v", "-c", str(tmp_path / "config.yaml"))
    assert result.code == 0, result.err
    assert result.err == ""  # nothing skipped, nothing "cannot read"
    assert "5 files (5 read), 5 articles" in result.out
    urls = _item_urls(tmp_path)
    assert len(urls) == len(set(urls)) == 5
    assert sum("/story-10/" in url or "/story-11/" in url for url in urls) == 2
    # Nothing depended on the clock or failed: the next run does nothing.
    again = run_cli("build", "-v", "-c", str(tmp_path / "config.yaml"))
    assert "(0 read)" in again.out and again.err == ""


def test_a_link_to_nothing_is_passed_over(tmp_path: Path) -> None:
    make_articles(tmp_path / "articles", 2)
    (tmp_path / "articles" / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    (tmp_path / "articles" / "gone-folder").symlink_to(tmp_path / "nowhere")
    write_config(tmp_path, CHANNELS)
    result = run_cli("build", "-v", "-c", str(tmp_path / "config.yaml"))
    assert result.code == 0, result.err
    assert "2 files (2 read), 2 articles" in result.out


def test_a_link_to_the_cache_or_the_output_lists_neither(tmp_path: Path) -> None:
    make_articles(tmp_path / "articles", 2)
    write_config(tmp_path, CHANNELS)
    assert run_cli("build", "-c", str(tmp_path / "config.yaml")).code == 0  # both exist now
    (tmp_path / "articles" / "state").symlink_to(tmp_path / ".syndicate")  # holds build.lock
    (tmp_path / "articles" / "published").symlink_to(tmp_path / "feeds")
    result = run_cli("build", "-v", "-c", str(tmp_path / "config.yaml"))
    assert result.code == 0, result.err
    assert result.err == ""
    assert "2 files" in result.out


def test_a_file_is_read_whole_whatever_size_it_was_listed_with(tmp_path: Path) -> None:
    """The first pass reads each file expecting the size the listing saw, and stops there
    when the file has just that; a file that grew or shrank since is read to its end."""
    from syndicate.index import read_file

    path = tmp_path / "a.txt"
    data = bytes(range(256)) * 40_000  # larger than one read after the first
    path.write_bytes(data)
    for listed in (len(data), 0, 100, len(data) - 1, len(data) + 1, 5 * len(data)):
        assert read_file(str(path), listed) == data, listed
    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_file("a.txt", 100, folder) == data  # as the first pass's workers open it
    finally:
        os.close(folder)
    path.write_bytes(b"")
    assert read_file(str(path), 0) == b""
    assert read_file(str(path), 10) == b""


def test_a_file_that_cannot_be_read_is_named_and_a_named_pipe_does_not_stop_the_build(
        tmp_path: Path) -> None:
    make_articles(tmp_path / "articles", 3)
    os.mkfifo(tmp_path / "articles" / "pipe.txt")  # nothing will ever write to it
    write_config(tmp_path, CHANNELS)
    result = run_cli("build", "-c", str(tmp_path / "config.yaml"))
    assert result.code == 0, result.err
    assert "pipe.txt" in result.err and "empty file" in result.err
    assert len(_item_urls(tmp_path)) == 3


def test_the_first_pass_names_a_file_gone_since_the_listing() -> None:
    from datetime import UTC, datetime

    from syndicate.index import _read_chunk
    from syndicate.listing import UNKNOWN

    for source in ("/nonexistent-archive", "/"):  # the folder itself gone, or only the file
        [(row, recheck)] = _read_chunk((source, "UTC", ("utf-8",), datetime.now(UTC),
                                        [("no-such-file.txt", 10, 0)]))
        assert row[0] == "no-such-file.txt" and row[3] == "cannot read: No such file or directory"
        assert recheck  # read again next run: it may be back
        # Listed without its stat signature (a build that reads every file): as if the
        # listing had not found it.
        assert _read_chunk((source, "UTC", ("utf-8",), datetime.now(UTC),
                            [("no-such-file.txt", UNKNOWN, UNKNOWN)])) == []


def test_a_listing_without_stats_is_completed_by_the_first_pass_as_a_stat_would(
        tmp_path: Path) -> None:
    """A build whose cache knows no file lists the archive without stat signatures and
    takes them from each file as it reads it: the listing it keeps (for the next run's
    no-change shortcut and snapshot) must be the one a listing with stats gives."""
    from datetime import UTC, datetime

    from syndicate.config import load_config
    from syndicate.index import _read_chunk
    from syndicate.listing import UNKNOWN, Completion, list_archive

    make_articles(tmp_path / "articles" / "2024", 5)
    (tmp_path / "articles" / "2024" / "broken.txt").write_bytes(b"\x00\x01 not an article")
    (tmp_path / "articles" / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    config = load_config(write_config(tmp_path, CHANNELS))
    bare = list_archive(config, stat=False)
    assert bare.fingerprint == "" and {(s, m) for _p, s, m in bare.files} == {(UNKNOWN, UNKNOWN)}
    rows = _read_chunk((str(config.site.source), "UTC", ("utf-8",), datetime.now(UTC),
                        list(bare.files)))
    completion = Completion(config)
    for row, _recheck in rows:
        completion.add(row[0], row[1], row[2])
    read = completion.listing()
    assert read == list_archive(config)
    assert len(read.files) == 6  # the broken file is listed (and skipped); the dead link is not


def test_a_completion_hashes_its_files_as_one_fingerprint(tmp_path: Path) -> None:
    """Completion hashes the files in batches as they come: the fingerprint must be the
    one made of all of them at once, whatever the count (a batch boundary, one over, a
    name that is not UTF-8)."""
    from syndicate.config import load_config
    from syndicate.listing import Completion, _fingerprint

    config = load_config(write_config(tmp_path, CHANNELS))
    for count in (0, 1, Completion.BATCH - 1, Completion.BATCH, Completion.BATCH + 1,
                  2 * Completion.BATCH + 7):
        files = [(f"2024/{n:05d}\udcff-文.txt", n * 7, 10**18 + n) for n in range(count)]
        completion = Completion(config)
        for file in files:
            completion.add(*file)
        listing = completion.listing()
        assert listing.files == tuple(files)
        assert listing.fingerprint == _fingerprint(config, files)


def test_progress_counts_files_gone_since_the_listing_as_done(tmp_path: Path) -> None:
    """The first pass's progress reaches its total even when a file listed without its
    stat signature is gone by the time it is read (it gives no row)."""
    from datetime import UTC, datetime

    from syndicate.config import load_config
    from syndicate.index import first_pass
    from syndicate.listing import list_archive

    make_articles(tmp_path / "articles", 3)
    (tmp_path / "articles" / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    config = load_config(write_config(tmp_path, CHANNELS))
    todo = list(list_archive(config, stat=False).files)
    assert len(todo) == 4  # listed by name: the dead link is among them
    calls: list[tuple[int, int]] = []
    read = list(first_pass(config, todo, datetime.now(UTC),
                           lambda done, total: calls.append((done, total))))
    assert len(read) == 3
    assert calls[-1] == (4, 4)
