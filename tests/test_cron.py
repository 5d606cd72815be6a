"""`syndicate cron`: the crontab line, and installing and removing it with the real
`crontab` program (Debian package cron).

Isolation: these tests never touch the crontab of the user running them. The tests that
change a crontab need root: each creates a throwaway system user with `useradd`, works
on that user's crontab through `syndicate cron --user NAME` (which passes `-u NAME` to
crontab), then removes the crontab and the user. A guard checks that the runner's own
crontab is byte-identical afterwards. Without root, `useradd` or `crontab` they are
skipped, saying why. (Saving and restoring the runner's own crontab instead would lose
it if a test were killed halfway, and would race a real edit.) The lines installed run
at 04:05 on 1 January, so even a running cron daemon would not start them.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syndicate import crontab
from syndicate.config import load_config
from syndicate.errors import ConfigError, CrontabError
from tests.conftest import make_articles, run_cli

CHANNEL = {"title": "All", "link": "https://cn.nytimes.com/"}
RARE = "5 4 1 1 *"  # once a year: installed lines that a cron daemon would not start

# --- which schedule the line runs at -------------------------------------------------------


def test_one_schedule_for_every_channel_is_the_lines_schedule(site: Callable[..., Path]) -> None:
    config = load_config(site({}, {"a": CHANNEL, "b": {**CHANNEL, "schedule": "*/15  * * * *"}},
                              schedule="*/15 * * * *"))
    assert crontab.plan(config) == crontab.Plan("*/15 * * * *", due=False)


def test_different_schedules_run_every_minute_with_due(site: Callable[..., Path]) -> None:
    config = load_config(site({}, {"a": CHANNEL, "b": {**CHANNEL, "schedule": "0 6 * * *"}},
                              schedule="*/15 * * * *"))
    assert crontab.plan(config) == crontab.Plan("* * * * *", due=True)
    # a channel without any schedule beside one with a schedule: the same
    config = load_config(site({}, {"a": CHANNEL, "b": {**CHANNEL, "schedule": "0 6 * * *"}}))
    assert crontab.plan(config) == crontab.Plan("* * * * *", due=True)


def test_no_schedule_anywhere_is_a_config_error(site: Callable[..., Path]) -> None:
    config = load_config(site({}))
    with pytest.raises(ConfigError, match=r"site\.schedule"):
        crontab.plan(config)
    result = run_cli("cron", "-c", str(config.path))
    assert result.code == 3 and "needs a schedule" in result.err and result.out == ""


# --- the line ------------------------------------------------------------------------------


def test_the_line_has_absolute_paths_a_folder_and_a_log(site: Callable[..., Path],
                                                        tmp_path: Path) -> None:
    config = site({}, schedule="*/15 * * * *")
    result = run_cli("cron", "-c", "config.yaml", cwd=tmp_path)
    assert result.code == 0 and result.err == ""
    line = result.out.rstrip("\n")
    assert "\n" not in line
    schedule, command = line[:len("*/15 * * * *")], line[len("*/15 * * * * "):]
    assert schedule == "*/15 * * * *"
    words = shlex.split(command, comments=True)
    assert words[:3] == ["cd", str(tmp_path), "&&"]
    program = words[3]
    assert os.path.isabs(program) and os.access(program, os.X_OK)
    build_at = words.index("build")
    assert words[build_at:build_at + 3] == ["build", "-c", str(config)]
    assert f">>{tmp_path / '.syndicate' / 'syndicate.log'}" in words
    assert line.endswith(f"# syndicate cron: {config}")

    other = run_cli("cron", "-c", str(config), "--log", "logs/feeds.log", cwd=tmp_path / "articles")
    assert f">>{tmp_path / 'articles' / 'logs' / 'feeds.log'} 2>&1" in other.out


def test_the_line_runs_the_build_as_cron_would(site: Callable[..., Path], tmp_path: Path) -> None:
    """Cron's treatment of the command: `\\%` becomes `%`, then /bin/sh runs it from the
    home folder with a bare environment. Paths with a space and a percent sign."""
    folder = tmp_path / "news 100%"
    folder.mkdir()
    make_articles(folder / "articles", 2)
    (folder / "config.yaml").write_text(site({}, schedule="*/15 * * * *").read_text(encoding="utf-8"),
                                        encoding="utf-8")
    config = folder / "config.yaml"
    line = run_cli("cron", "-c", str(config)).out.rstrip("\n")
    assert "100\\%" in line and "100%" not in line.replace("100\\%", "")
    command = line.split(" ", 5)[5].replace("\\%", "%")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "LOGNAME": "cron"}
    (folder / ".syndicate").mkdir()  # `cron --install` makes the log's folder
    proc = subprocess.run(["/bin/sh", "-c", command], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "feeds" / "all.xml").is_file()
    assert (folder / ".syndicate" / "syndicate.log").read_text() == ""  # silent on success


def test_the_program_is_this_installation(tmp_path: Path) -> None:
    script = tmp_path / "venv" / "bin" / "syndicate"
    python = tmp_path / "venv" / "bin" / "python"
    script.parent.mkdir(parents=True)
    for path in (script, python):
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    assert crontab.command(str(script), "/usr/bin/python3") == (str(script),)
    # `python -m syndicate`: the script installed beside that python, the same environment
    assert crontab.command("/src/syndicate/__main__.py", str(python)) == (str(script),)
    script.unlink()
    assert crontab.command("/src/syndicate/__main__.py", str(python)) == (
        str(python), "-m", "syndicate")


def test_paths_cron_cannot_hold_are_refused(site: Callable[..., Path], tmp_path: Path) -> None:
    config = load_config(site({}, schedule="*/15 * * * *"))
    with pytest.raises(CrontabError, match="backslash"):
        crontab.line(config, crontab.plan(config), ("/usr/bin/syndicate",), tmp_path / "a\\b.log")


# --- editing the crontab's text ------------------------------------------------------------

OTHERS = (b"# m h dom mon dow command\r\n"
          b"MAILTO=\"ops@example.org\"\n"
          b"\n"
          b"0 3 * * * /usr/local/bin/backup --quiet   \n"
          b"*/5 * * * * cd /srv/other && syndicate build >>x 2>&1 # syndicate cron: /srv/other/config.yaml\n"
          b"@reboot echo caf\xe9 \\% done")  # Latin-1, an escaped %, no final newline


def test_install_twice_leaves_one_line_and_remove_restores_every_byte() -> None:
    mark = b"# syndicate cron: /srv/news/config.yaml"
    first = crontab.with_line(OTHERS, b"*/15 * * * * build " + mark, mark)
    assert first.startswith(OTHERS + b"\n")  # the last line only got its newline
    again = crontab.with_line(first, b"*/15 * * * * build " + mark, mark)
    assert again == first and again.count(mark) == 1
    moved = crontab.with_line(first, b"0 * * * * build " + mark, mark)
    assert moved == first.replace(b"*/15 * * * * build ", b"0 * * * * build ")  # in place
    assert crontab.without_line(moved, mark) == OTHERS + b"\n"
    ours_in_middle = b"a\n" + b"x " + mark + b"\n" + b"b\r\nc"
    assert crontab.without_line(ours_in_middle, mark) == b"a\nb\r\nc"


# --- a missing crontab program -------------------------------------------------------------


def test_without_crontab_install_says_what_to_do(site: Callable[..., Path], tmp_path: Path) -> None:
    config = site({}, schedule="*/15 * * * *")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    for action in ("--install", "--remove"):
        result = run_cli("cron", action, "-c", str(config), env={"PATH": str(empty)})
        assert result.code == 4, result.err
        assert "`crontab` program was not found" in result.err and "apt-get install cron" in result.err
        assert "Traceback" not in result.err
    assert run_cli("cron", "-c", str(config), env={"PATH": str(empty)}).code == 0  # printing works


# --- the real crontab, on a throwaway user ---------------------------------------------------

CRONTAB = shutil.which("crontab")


def _why_not_real_crontab() -> str:
    if CRONTAB is None:
        return ("the real-crontab tests need the `crontab` program (Debian package cron: "
                "apt-get install cron)")
    if os.geteuid() != 0:
        return ("the real-crontab tests run as root, on a throwaway user's crontab "
                "(crontab -u); they never touch the crontab of the user running the tests")
    if not shutil.which("useradd"):
        return "the real-crontab tests need `useradd` to create a throwaway user"
    return ""


needs_real_crontab = pytest.mark.skipif(bool(_why_not_real_crontab()), reason=_why_not_real_crontab())


def _crontab_of(user: str | None) -> tuple[int, bytes]:
    assert CRONTAB
    proc = subprocess.run([CRONTAB, *(["-u", user] if user else []), "-l"], capture_output=True,
                          env={**os.environ, "LC_ALL": "C"})
    return proc.returncode, proc.stdout


@pytest.fixture
def cron_user() -> Iterator[str]:
    """A system user that exists for one test, so that its crontab is ours to change."""
    own_before = _crontab_of(None)
    name = f"synd-t-{uuid.uuid4().hex[:10]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)
    try:
        yield name
    finally:
        assert CRONTAB
        subprocess.run([CRONTAB, "-u", name, "-r"], capture_output=True)
        subprocess.run(["userdel", name], capture_output=True)
        assert _crontab_of(None) == own_before, "the runner's own crontab changed"


def _set_crontab(user: str, data: bytes) -> None:
    assert CRONTAB
    subprocess.run([CRONTAB, "-u", user, "-"], input=data, check=True, capture_output=True)


@needs_real_crontab
def test_real_crontab_install_twice_then_remove(site: Callable[..., Path], cron_user: str) -> None:
    # crontab refuses a file without its final newline; a CR has its own test below
    others = OTHERS.replace(b"\r\n", b"\n") + b"\n"
    _set_crontab(cron_user, others)
    config = site({}, schedule=RARE)
    line = run_cli("cron", "-c", str(config)).out
    for _ in range(2):
        result = run_cli("cron", "--install", "--user", cron_user, "-v", "-c", str(config))
        assert result.code == 0, result.err
    assert "already in" in result.out
    code, installed = _crontab_of(cron_user)
    assert code == 0 and installed == others + line.encode()
    assert installed.count(b"# syndicate cron: ") == 2  # ours, and the other site's, kept

    removed = run_cli("cron", "--remove", "--user", cron_user, "-v", "-c", str(config))
    assert removed.code == 0 and "removed from" in removed.out
    assert _crontab_of(cron_user) == (0, others)

    again = run_cli("cron", "--remove", "--user", cron_user, "-v", "-c", str(config))
    assert again.code == 0 and "nothing to remove" in again.out
    assert _crontab_of(cron_user) == (0, others)


@needs_real_crontab
def test_real_crontab_reinstall_replaces_in_place(site: Callable[..., Path], tmp_path: Path,
                                                  cron_user: str) -> None:
    _set_crontab(cron_user, b"# top\n0 1 * * * true\n")
    config = site({}, schedule=RARE)
    assert run_cli("cron", "--install", "--user", cron_user, "-c", str(config)).code == 0
    assert (tmp_path / ".syndicate").is_dir()  # the log's folder, for cron's shell
    _set_crontab(cron_user, _crontab_of(cron_user)[1] + b"# bottom\n")
    site({}, {"a": CHANNEL, "b": {**CHANNEL, "schedule": "5 4 2 1 *"}}, schedule=RARE)
    result = run_cli("cron", "--install", "--user", cron_user, "-c", str(config))
    assert result.code == 0 and result.out == ""  # silent unless -v or a terminal
    lines = _crontab_of(cron_user)[1].decode().splitlines()
    assert lines[0] == "# top" and lines[1] == "0 1 * * * true" and lines[3] == "# bottom"
    assert lines[2].startswith("* * * * * ") and " build --due -c " in lines[2]


@needs_real_crontab
def test_real_crontab_remove_of_the_only_line_leaves_no_crontab(site: Callable[..., Path],
                                                               cron_user: str) -> None:
    config = site({}, schedule=RARE)
    assert _crontab_of(cron_user)[0] == 1  # a new user has none
    assert run_cli("cron", "--install", "--user", cron_user, "-c", str(config)).code == 0
    assert _crontab_of(cron_user)[0] == 0
    assert run_cli("cron", "--remove", "--user", cron_user, "-c", str(config)).code == 0
    assert _crontab_of(cron_user) == (1, b"")


@needs_real_crontab
def test_real_crontab_with_a_carriage_return_is_left_alone(site: Callable[..., Path],
                                                           cron_user: str) -> None:
    """Debian's `crontab -l` lists a CR byte as the two characters `\\r`: writing that back
    would change the line, so syndicate refuses and says what to do."""
    _set_crontab(cron_user, b"# DOS\r\n0 1 * * * true\n")
    before = _crontab_of(cron_user)
    config = site({}, schedule=RARE)
    result = run_cli("cron", "--install", "--user", cron_user, "-c", str(config))
    if before[1] == b"# DOS\r\n0 1 * * * true\n":  # a crontab that lists bytes as they are
        assert result.code == 0, result.err
    else:
        assert result.code == 4 and "carriage return" in result.err
        assert _crontab_of(cron_user) == before


@needs_real_crontab
def test_real_crontab_errors_are_reported(site: Callable[..., Path]) -> None:
    config = site({}, schedule=RARE)
    result = run_cli("cron", "--install", "--user", f"no-such-user-{uuid.uuid4().hex[:6]}",
                     "-c", str(config))
    assert result.code == 4 and "crontab" in result.err and "Traceback" not in result.err

