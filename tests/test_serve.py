"""`syndicate serve` over real HTTP on 127.0.0.1: the command as a user starts it, in its own
process, asked with http.client (which sends a request path exactly as given, so the
traversal attempts reach the server unaltered).

Content types with charset, ETag / If-None-Match and Last-Modified / If-Modified-Since
answered with 304, gzip when accepted, HEAD, no directory listing, and every way out of
the output folder refused: dot segments plain and encoded, encoded slashes and
backslashes, `//` absolute paths, NUL, dotfiles, and symbolic links that lead outside.
With --build, a new article and a changed config reach the served files within seconds.
"""

from __future__ import annotations

import gzip
import http.client
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import pytest

from syndicate.serve import Refused, accepts_gzip, resolve
from tests.conftest import SEED, make_articles, run_cli, write_config

TYPES = {
    "all.xml": "application/rss+xml; charset=utf-8",
    "all.atom": "application/atom+xml; charset=utf-8",
    "all.json": "application/feed+json; charset=utf-8",
    "index.opml": "text/x-opml; charset=utf-8",
    "index.html": "text/html; charset=utf-8",
    "all.html": "text/html; charset=utf-8",
}


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Server:
    def __init__(self, proc: subprocess.Popen[str], url: str, folder: Path) -> None:
        self.proc = proc
        self.url = url
        self.folder = folder
        self.host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        self.port = int(port)

    def request(self, path: str, method: str = "GET", **headers: str) -> Response:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name.replace("_", "-"), value)
            connection.endheaders()
            response = connection.getresponse()
            body = response.read()
            return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
        finally:
            connection.close()


def start(config: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start `syndicate serve --port 0` and wait (bounded) for the line with its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "syndicate", "serve", "-c", str(config),
                             "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=config.parent,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    if not ready:
        proc.kill()
        pytest.fail("syndicate serve printed no address within 60 s")
    line = proc.stdout.readline()
    assert "serving" in line and "http://127.0.0.1:" in line, (line, proc.stderr and proc.stderr.read())
    return proc, line.split(" at ", 1)[1].split(" ", 1)[0]


def stop(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C: a clean exit with a message."""
    proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("syndicate serve did not stop within 15 s of Ctrl-C")
    assert proc.returncode == 0, err
    assert err.rstrip().endswith("syndicate: stopped"), err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve")
    make_articles(folder / "articles", 6)
    shutil.copy(SEED, folder / "articles" / "seed.txt")
    config = write_config(folder, {"all": {"title": "All", "link": "https://cn.nytimes.com/"}})
    assert run_cli("build", "-c", str(config)).code == 0
    feeds = folder / "feeds"
    (feeds / ".syndicate-all.xml.1.tmp").write_text("a build's temporary file")
    (feeds / "sub").mkdir()
    (feeds / "sub" / "inner.xml").write_bytes((feeds / "all.xml").read_bytes())
    (folder / "secret.xml").write_text("<secret/>")
    os.symlink(folder / "config.yaml", feeds / "leak.xml")
    os.symlink(folder / "secret.xml", feeds / "leak2.xml")
    os.symlink(folder, feeds / "up")
    os.symlink(feeds / "all.xml", feeds / "alias.xml")
    proc, url = start(config)
    yield Server(proc, url, feeds)
    stop(proc)


# --- content types and bodies -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TYPES))
def test_each_format_has_its_content_type_with_charset(server: Server, name: str) -> None:
    response = server.request(f"/{name}")
    assert response.status == 200
    assert response.headers["content-type"] == TYPES[name]
    assert response.body == (server.folder / name).read_bytes()
    assert response.headers["content-length"] == str(len(response.body))
    assert response.headers["x-content-type-options"] == "nosniff"


def test_root_serves_the_front_page(server: Server) -> None:
    response = server.request("/")
    assert response.status == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.body == (server.folder / "index.html").read_bytes()
    assert server.request("/?utm_source=x").body == response.body  # the query is ignored


def test_head_sends_the_headers_without_the_body(server: Server) -> None:
    get, head = server.request("/all.xml"), server.request("/all.xml", "HEAD")
    assert head.status == 200 and head.body == b""
    for name in ("content-type", "content-length", "etag", "last-modified"):
        assert head.headers[name] == get.headers[name]


def test_other_methods_are_not_allowed(server: Server) -> None:
    response = server.request("/all.xml", "POST", Content_Length="0")
    assert response.status == 405
    assert response.headers["allow"] == "GET, HEAD"


# --- caching: ETag, Last-Modified, 304 ----------------------------------------------------------


def test_etag_and_if_none_match(server: Server) -> None:
    first = server.request("/all.atom")
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert server.request("/all.atom").headers["etag"] == etag  # stable
    assert server.request("/all.json").headers["etag"] != etag
    for offered in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = server.request("/all.atom", If_None_Match=offered)
        assert again.status == 304, offered
        assert again.body == b""
        assert again.headers["etag"] == etag
    assert server.request("/all.atom", If_None_Match='"other"').status == 200


def test_last_modified_and_if_modified_since(server: Server) -> None:
    mtime = (server.folder / "all.xml").stat().st_mtime
    response = server.request("/all.xml")
    assert response.headers["last-modified"] == formatdate(mtime, usegmt=True)
    assert response.headers["cache-control"] == "no-cache"
    same = server.request("/all.xml", If_Modified_Since=response.headers["last-modified"])
    assert same.status == 304 and same.body == b""
    later = server.request("/all.xml", If_Modified_Since=formatdate(mtime + 3600, usegmt=True))
    assert later.status == 304
    earlier = server.request("/all.xml", If_Modified_Since=formatdate(mtime - 3600, usegmt=True))
    assert earlier.status == 200 and earlier.body
    assert server.request("/all.xml", If_Modified_Since="garbage").status == 200
    # If-None-Match decides when both are sent (RFC 9110 §13.2.2)
    both = server.request("/all.xml", If_None_Match='"other"',
                          If_Modified_Since=response.headers["last-modified"])
    assert both.status == 200


# --- gzip ---------------------------------------------------------------------------------------


def test_gzip_when_the_client_accepts_it(server: Server) -> None:
    plain = server.request("/all.json")
    zipped = server.request("/all.json", Accept_Encoding="br, gzip;q=0.8")
    assert zipped.status == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped.body) == plain.body
    assert len(zipped.body) < len(plain.body)
    assert zipped.headers["content-length"] == str(len(zipped.body))
    assert zipped.headers["etag"] != plain.headers["etag"]  # another representation
    assert "content-encoding" not in plain.headers
    revalidated = server.request("/all.json", Accept_Encoding="gzip",
                                 If_None_Match=zipped.headers["etag"])
    assert revalidated.status == 304


@pytest.mark.parametrize("header", ["gzip;q=0", "identity", "br", "*;q=0", "gzip;q=0, *"])
def test_no_gzip_when_refused(server: Server, header: str) -> None:
    response = server.request("/all.json", Accept_Encoding=header)
    assert "content-encoding" not in response.headers
    assert response.body == (server.folder / "all.json").read_bytes()


def test_accept_encoding_parsing() -> None:
    assert accepts_gzip("gzip") and accepts_gzip("deflate, gzip;q=1.0") and accepts_gzip("*")
    assert accepts_gzip("x-gzip") and accepts_gzip("GZIP;Q=0.5")
    assert not accepts_gzip("") and not accepts_gzip("gzip;q=0") and not accepts_gzip("br")
    assert not accepts_gzip("gzip;q=zero") and not accepts_gzip("*;q=0")


# --- nothing outside the folder, no listing -----------------------------------------------------

ESCAPES = [
    "/../config.yaml", "/%2e%2e/config.yaml", "/%2E%2E/config.yaml", "/..%2fconfig.yaml",
    "/..%2Fconfig.yaml", "/..%5cconfig.yaml", "/..\\config.yaml", "//etc/passwd",
    "/%2fetc%2fpasswd", "/%2Fetc/passwd", "/./../config.yaml", "/sub/../../config.yaml",
    "/sub/%2e%2e/%2e%2e/config.yaml", "/%252e%252e/config.yaml", "/..", "/.", "/%00",
    "/all.xml%00.html", "/.syndicate-all.xml.1.tmp", "/%2esyndicate-all.xml.1.tmp",
    "/leak.xml", "/leak2.xml", "/up/config.yaml", "/up/secret.xml",
    "/%ff%fe", "/sub/", "/sub", "/no-such-file.xml",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_paths_out_of_the_folder_are_refused(server: Server, path: str) -> None:
    response = server.request(path)
    assert response.status in (403, 404), (path, response.status)
    assert b"secret" not in response.body and b"base_url" not in response.body
    assert b"root:" not in response.body and b"<rss" not in response.body


def test_symlinks_out_of_the_folder_are_forbidden(server: Server) -> None:
    assert server.request("/leak.xml").status == 403
    assert server.request("/up/config.yaml").status == 403
    alias = server.request("/alias.xml")  # a link that stays inside is served
    assert alias.status == 200 and alias.body == (server.folder / "all.xml").read_bytes()


def test_no_directory_listing_but_files_in_folders_are_served(server: Server) -> None:
    for path in ("/sub/", "/sub"):
        response = server.request(path)
        assert response.status == 404
        assert b"inner.xml" not in response.body
    assert server.request("/sub/inner.xml").status == 200


def test_an_absolute_form_request_target_is_refused(server: Server) -> None:
    assert server.request("http://127.0.0.1/../config.yaml").status == 400


def test_resolve_directly(tmp_path: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    (root / "a.xml").write_text("x")
    (root / "index.html").write_text("x")
    assert resolve(root, "/a.xml") == root / "a.xml"
    assert resolve(root, "/") == root / "index.html"
    assert resolve(root, "/a%2exml") == root / "a.xml"  # an encoded dot inside a name is fine
    for path in ("/../x", "/%2e%2e/x", "/a%2f..", "/.hidden", "relative", "/a.xml/"):
        with pytest.raises(Refused):
            resolve(root, path)


# --- the command itself -------------------------------------------------------------------------


def test_serve_without_an_output_folder_says_to_build(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"all": {"title": "All", "link": "https://cn.nytimes.com/"}})
    (tmp_path / "articles").mkdir()
    result = run_cli("serve", "-c", str(config), "--port", "0", timeout=30)
    assert result.code == 4
    assert "syndicate build" in result.err and "--build" in result.err


def test_a_busy_port_is_a_clear_error(server: Server, tmp_path: Path) -> None:
    result = run_cli("serve", "-c", str(server.folder.parent / "config.yaml"),
                     "--port", str(server.port), timeout=30)
    assert result.code == 2
    assert f"cannot listen on 127.0.0.1 port {server.port}" in result.err


def test_build_mode_rebuilds_on_new_articles_and_config_changes(tmp_path: Path) -> None:
    make_articles(tmp_path / "articles", 3)
    config = write_config(tmp_path, {"all": {"title": "All", "link": "https://cn.nytimes.com/"}})
    proc, url = start(config, "--build", "--interval", "0.5")  # builds first: no output yet
    server = Server(proc, url, tmp_path / "feeds")
    try:
        assert server.request("/all.json").status == 200
        make_articles(tmp_path / "articles", 1, start=3)
        assert wait_for(lambda: b"/story-3/" in server.request("/all.json").body), \
            "the new article did not reach all.json within 20 s"
        write_config(tmp_path, {"all": {"title": "Renamed channel",
                                        "link": "https://cn.nytimes.com/"}})
        assert wait_for(lambda: "Renamed channel" in server.request("/").body.decode()), \
            "the config change did not reach index.html within 20 s"
        (tmp_path / "config.yaml").write_text("site: [broken", encoding="utf-8")
        time.sleep(1.5)
        assert server.request("/all.json").status == 200  # still serving the last good output
    finally:
        err = stop(proc)
    assert "rebuilt:" in err
    assert "not valid YAML" in err and "serving the last good output" in err


def wait_for(condition: object, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.2)
    return False
