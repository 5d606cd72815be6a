"""Everything that talks to the network: the WebSub publish ping, and the small HTTP
client that enclosure probing (probe.py) uses.

Nothing here can fail a build. Every request has a short timeout, the hub ping has an
overall deadline, and failures come back as values the build reports as warnings.

The client is careful with URLs taken from article files, which anyone could have
written: only http and https; the host is resolved once and the request goes to the
address that was checked (no second lookup that DNS rebinding could answer
differently); redirects are followed by hand, a few at most, and each hop is checked
again. The hub is the operator's own setting, so its address is not restricted.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

from syndicate import __version__
from syndicate.errors import SyndicateError

USER_AGENT = f"syndicate/{__version__}"

# The WebSub publish ping: a few seconds per attempt, three attempts close together, and
# never more than HUB_DEADLINE seconds for all of a build's pings together.
HUB_TIMEOUT = 5.0
HUB_ATTEMPTS = 3
HUB_BACKOFF = (0.5, 1.5)  # seconds before the second and the third attempt
HUB_DEADLINE = 20.0
HUB_WORKERS = 4

REDIRECTS = {301, 302, 303, 307, 308}

# Cloud metadata services: the classic target of server-side request forgery, and never
# where an image lives, so they are refused even with site.probe_private.
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean…
    "169.254.170.2",  # AWS ECS task metadata
    "100.100.100.200",  # Alibaba Cloud
    "fd00:ec2::254",  # AWS over IPv6
))
NAT64 = ipaddress.ip_network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class NetworkError(SyndicateError):
    """A request did not get an answer (timeout, refused connection, bad TLS…)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Refused(NetworkError):
    """The URL, or a redirect, leads somewhere syndicate may not go."""

    def __init__(self, reason: str, sent: bool = False) -> None:
        super().__init__(reason)
        self.sent = sent  # True when refused at a redirect: a first request did go out


def refusal(address: Address, allow_private: bool) -> str | None:
    """Why syndicate must not connect to `address`, or None when it may.

    Public (global) addresses are fine. Loopback, private, shared (100.64/10) and
    link-local addresses are refused unless `allow_private` (an image server on the
    intranet, or a test on 127.0.0.1). Cloud metadata, multicast, unspecified and
    reserved addresses are always refused. An IPv4 address inside IPv6 (mapped, 6to4,
    NAT64) is judged as the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return refusal(inner, allow_private)
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return None if allow_private else "a loopback address"
    if address.is_link_local:
        return None if allow_private else "a link-local address"
    if address.is_global:
        return None
    if address.is_reserved:
        return "a reserved address"
    return None if allow_private else "a private address"


@dataclass(frozen=True, slots=True)
class Guard:
    """Where requests may go: see `refusal`."""

    allow_private: bool = False


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names lower-cased; a repeated header keeps its last value
    url: str  # the URL that answered, after redirects


def request(method: str, url: str, *, timeout: float, headers: Mapping[str, str] | None = None,
            body: bytes | None = None, guard: Guard | None = None, redirects: int = 0,
            deadline: float | None = None) -> Response:
    """One HTTP request, following at most `redirects` redirects. The status and headers
    are returned; the body is never read (this client only asks about resources).

    `timeout` bounds each connect and each read; `deadline` (time.monotonic()) bounds
    the whole exchange, redirects included. With a guard, every hop is checked and the
    connection goes to the checked address. Raises Refused or NetworkError."""
    sent = {"User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})}
    for hop in range(redirects + 1):
        try:
            scheme, host, port, target = _split(url)
            address = _resolve(host, port, guard) if guard else None
        except Refused as e:
            raise Refused(e.reason, sent=hop > 0) from None
        remaining = timeout if deadline is None else min(timeout, deadline - time.monotonic())
        if remaining <= 0:
            raise NetworkError("timed out")
        connection = _connection(scheme, host, port, address, remaining)
        try:
            connection.request(method, target, body=body, headers=sent)
            answer = connection.getresponse()
            status = answer.status
            received = {name.lower(): value for name, value in answer.getheaders()}
        except (OSError, http.client.HTTPException) as e:
            raise NetworkError(describe(e)) from e
        finally:
            connection.close()
        if status in REDIRECTS and "location" in received and redirects:
            url = urljoin(url, received["location"])
            continue
        return Response(status, received, url)
    raise NetworkError(f"more than {redirects} redirects")


def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path and query) of an http or https URL; Refused for others."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(f"{scheme or 'no'} scheme (only http and https are fetched)")
    try:
        host, port = parts.hostname, parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise Refused("bad port in the URL") from None
    if not host:
        raise Refused("no host in the URL")
    return scheme, host, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def describe(error: BaseException) -> str:
    """A short reason for a failed request, the same whatever the platform's wording."""
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(error, socket.gaierror):
        return "cannot resolve the host name"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({error.reason or error})"
    if isinstance(error, http.client.HTTPException):
        return f"bad HTTP answer ({type(error).__name__})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__


def _resolve(host: str, port: int, guard: Guard) -> str:
    """The address to connect to. Every address the name resolves to must be allowed: a
    name that mixes public and private addresses is refused, not tried in turn."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise NetworkError(describe(e) if isinstance(e, OSError) else "bad host name") from e
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise NetworkError("cannot resolve the host name")
    for address in addresses:
        why = refusal(address, guard.allow_private)
        if why:
            raise Refused(f"{host} is {why} ({address})")
    return str(addresses[0])


_TLS = ssl.create_default_context()


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to an address already checked, whatever the host name now resolves to."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """The same for https: the TLS handshake still names and verifies the host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=_TLS)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = _TLS.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _connection(scheme: str, host: str, port: int, address: str | None,
                timeout: float) -> http.client.HTTPConnection:
    if address is None:
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=_TLS)
        return http.client.HTTPConnection(host, port, timeout=timeout)
    if scheme == "https":
        return _PinnedHTTPS(host, port, address, timeout)
    return _PinnedHTTP(host, port, address, timeout)


# --- WebSub ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class HubOutcome:
    notified: tuple[str, ...]  # feed URLs the hub accepted
    failed: tuple[tuple[str, str], ...]  # (feed URL, why) for the ones it did not


def notify_hub(hub: str, topics: Sequence[str]) -> HubOutcome:
    """Tell the WebSub hub that each feed in `topics` changed: one form-encoded POST of
    `hub.mode=publish` and `hub.url=<feed URL>` per feed (the form every hub accepts;
    not all take several hub.url in one request), a few at a time.

    A 2xx answer is success. A timeout, a refused connection, a 5xx, 408 or 429 is
    tried again after a short pause; any other answer is final. Attempts stop at
    HUB_DEADLINE seconds after the first one, so a hub that hangs delays the build by
    that much at most."""
    unique = list(dict.fromkeys(topics))
    if not unique:
        return HubOutcome((), ())
    deadline = time.monotonic() + HUB_DEADLINE
    with ThreadPoolExecutor(max_workers=min(HUB_WORKERS, len(unique))) as pool:
        reasons = list(pool.map(lambda topic: _ping(hub, topic, deadline), unique))
    return HubOutcome(tuple(t for t, why in zip(unique, reasons, strict=True) if not why),
                      tuple((t, why) for t, why in zip(unique, reasons, strict=True) if why))


def _ping(hub: str, topic: str, deadline: float) -> str:
    """'' when the hub accepted the ping, else why not (the last attempt's reason)."""
    body = urlencode({"hub.mode": "publish", "hub.url": topic}).encode("ascii")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    why = "not attempted"
    for attempt in range(HUB_ATTEMPTS):
        if attempt:
            pause = HUB_BACKOFF[min(attempt, len(HUB_BACKOFF)) - 1]
            if time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
        if time.monotonic() >= deadline:
            break
        try:
            answer = request("POST", hub, timeout=HUB_TIMEOUT, headers=headers, body=body,
                             deadline=deadline)
        except NetworkError as e:
            why = e.reason
            continue
        if 200 <= answer.status < 300:
            return ""
        why = f"HTTP {answer.status}"
        if answer.status < 500 and answer.status not in (408, 429):
            break  # the hub said no; asking again will not change its mind
    return why
