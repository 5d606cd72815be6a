"""Text and markup hygiene shared by the parser: URL identity, sanitizing, image typing,
XML-safe text. Pure functions, no knowledge of feeds or files."""

from __future__ import annotations

import html
import posixpath
import re
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import nh3

# What XML 1.0 refuses (C0 controls but tab, LF and CR; lone surrogates; U+FFFE, U+FFFF),
# which makes a feed unreadable, and DEL and the C1 controls, which it allows but no text
# wants. Listed as the characters refused rather than as the complement of those allowed:
# the same set, but the re module compiles it in 0.5 ms instead of 5, in every build
# that parses (tests/test_properties.py checks every code point).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"\s+")
# Query parameters that only track a click; dropping them keeps one guid per story.
_TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|_ga|yclid|ref_src|smid|smtyp)$",
    re.IGNORECASE,
)
_MIME_BY_EXTENSION = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg", ".png": "image/png",
    ".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif", ".svg": "image/svg+xml",
    ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff", ".ico": "image/x-icon",
    ".heic": "image/heic", ".jxl": "image/jxl",
}
# Image proxies carry the real image in a query parameter (images.weserv.nl/?url=…).
_PROXY_PARAMS = ("url", "u", "src", "image", "img")

# What survives in content. Everything else (script, style, iframe, object, embed, form,
# event handlers, style attributes) is removed by nh3; only http(s) and mailto URLs remain,
# so javascript: and data: URLs are dropped with their attribute.
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl",
    "dt", "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
    "li", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "width", "height", "title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "time": {"datetime"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def xml_safe(text: str) -> str:
    """Drop characters that XML 1.0 forbids (and lone surrogates). Run after sanitizing:
    nh3 passes some control characters through."""
    return _XML_ILLEGAL.sub("", text)


def plain(text: str) -> str:
    """One line of readable text: XML-safe, whitespace runs folded."""
    return _SPACES.sub(" ", xml_safe(text)).strip()


_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?>")


def clean_title(raw: str) -> str:
    """A title as readers should show it: HTML tags that scrapers leave in titles are
    removed (readers show titles as plain text, the validator flags HTML in them),
    entities decoded, whitespace folded. A lone '<' as in '利率<3%' is text and stays."""
    return plain(html.unescape(_TAG.sub("", raw)))


# Made once: nh3.clean would convert these settings for every article (a quarter of
# what sanitizing an article costs).
_SANITIZER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes=URL_SCHEMES,
    link_rel=None,
    strip_comments=True,
)


def sanitize(fragment: str) -> str:
    """Untrusted HTML → HTML safe to put in front of a reader."""
    return xml_safe(_SANITIZER.clean(fragment))


def absolute(url: str, base: str) -> str | None:
    """Resolve a link or image URL against the article; None for what is not a web URL."""
    url = url.strip()
    if not url or url.startswith("#"):
        return None
    if _WEB_URL_AS_JOINED.match(url):
        return url  # what urljoin would give: most links in articles are already absolute
    return _joined(url, base)


# An absolute http(s) URL that urljoin gives back as it is: a lower-case scheme, a plain
# host, and none of what urlsplit drops or rewrites (whitespace, an empty query, empty
# ';' parameters, a fragment) or checks ('[' of an IPv6 host). tests/test_properties.py
# holds it to _joined.
_WEB_URL_AS_JOINED = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:[/?][^\s#;\[\]]*)?(?<!\?)\Z")


def _joined(url: str, base: str) -> str | None:
    try:
        joined = urljoin(base, url)
        scheme = urlsplit(joined).scheme.lower()
    except ValueError:  # e.g. an invalid IPv6 host in scraped markup
        return None
    return joined if scheme in ("http", "https", "mailto") else None


# What _normalized gives back as it is: https, a plain lower-case host, no query or
# fragment, no empty path segment, and a path that ends in '/' or in a segment with a
# '.' (a file name: an original-language link's `.../story.html`). tests/test_properties.py
# holds it to _normalized.
_ALREADY_NORMAL = re.compile(r"^https://[a-z0-9.-]+(?:/[^/?#\s]+)*(?:/|/[^/?#\s]*\.[^/?#\s]*)$")


def normalize_url(url: str) -> str:
    """The identity form of an article URL, so the same story never gets two guids:
    https, lower-case host without default port, no tracking parameters, no fragment,
    and a trailing slash on paths whose last segment is not a file name."""
    url = url.strip()
    if _ALREADY_NORMAL.match(url):
        return url  # the usual case, decided without urllib (it is most of the parse time)
    return _normalized(url)


def _normalized(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = parts.path or "/"
    last = path.rsplit("/", 1)[-1]
    if last and "." not in last:
        path += "/"
    path = re.sub(r"/{2,}", "/", path)
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
         if not _TRACKING_PARAMS.match(k)]
    )
    # The archive's sites serve https; an http:// capture is the same story.
    return urlunsplit(("https", host, path, query, ""))


def section_of(url: str) -> str:
    """`https://cn.nytimes.com/world/20240516/slug/` → `world`: the first path segment
    that is a word, not a date."""
    if url.startswith("https://") and "#" not in url:  # normalize_url's form: no urllib needed
        rest = url[8:].partition("?")[0]
        slash = rest.find("/")
        path = rest[slash:] if slash >= 0 else ""
    else:
        path = urlsplit(url).path
    for segment in path.split("/"):
        if segment and not segment.isdigit():
            return (unquote(segment) if "%" in segment else segment).lower()
    return ""


# The usual image URL in a scraped archive: a proxy's, with the real image as its one
# query parameter (https://images.weserv.nl/?url=static01.nyt.com/images/….webp), made of
# characters that urlsplit and parse_qsl take as they are (no escapes, '+', spaces,
# controls or ports). Group 1 ends with the real image's file name.
_USUAL_PROXIED = re.compile(
    r"https?://[A-Za-z0-9.-]+/[^?#%+&;=:\s\x00-\x1f\x7f]*\?(?:url|u|src|image|img)="
    r"(?:https?://)?[A-Za-z0-9.-]+(/[^?#%+&;=:\s\x00-\x1f\x7f]*)")


def image_mime(url: str) -> str | None:
    """The MIME type from the real file name, looking inside proxy URLs; None if unknown."""
    # The usual URL is typed from its parameter's extension without urllib, three times as
    # fast (a cold build types about two images an article it parses); what that does
    # not type is parsed. tests/test_properties.py holds the two ways to the same answer.
    if usual := _USUAL_PROXIED.fullmatch(url):
        mime = _MIME_BY_EXTENSION.get(posixpath.splitext(usual.group(1).lower())[1])
        if mime:
            return mime
    return _parsed_image_mime(url)


def _parsed_image_mime(url: str) -> str | None:
    parts = urlsplit(url)
    for key, value in parse_qsl(parts.query):
        if key.lower() in _PROXY_PARAMS and value:
            inner = value if "//" in value else "//" + value
            mime = _mime_of_path(urlsplit(inner).path)
            if mime:
                return mime
    return _mime_of_path(parts.path)


def _mime_of_path(path: str) -> str | None:
    ext = posixpath.splitext(unquote(path).lower())[1]
    return _MIME_BY_EXTENSION.get(ext)
