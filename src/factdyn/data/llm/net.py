"""What comes from the network, treated as hostile: one POST with a total deadline, URLs shown
without their credentials, text made safe to store and to print.

A socket timeout bounds each read, not the request: a server dripping a byte a second would
hold one for ever. Here a timer shuts the socket down when the deadline passes (connect, send,
headers and body together), which ends a blocked read at once. Name resolution is the one step
it cannot cut short (the system resolver cannot be interrupted). The proxy the environment
names (``https_proxy``, ``http_proxy``, ``no_proxy``) is used, as the ``openai`` client did.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import re
import socket
import ssl
import threading
import unicodedata
import urllib.request
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from factdyn.errors import DataError

MAX_REPLY_BYTES = 32 * 2**20  # far above any chat completion; a bigger body is not one
# Query parameters whose value is a credential (``?api_key=…``, ``?token=…``, ``?sig=…``).
_SECRET_PARAMS = ("key", "token", "secret", "password", "passwd", "auth", "sig", "credential")
# Unicode categories a terminal may act on: controls (ESC, CSI…), format characters (bidi
# overrides), surrogates, private use, unassigned, line and paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class NetError(Exception):
    """The request got no usable answer (a timeout, a refused or broken connection, a body
    over :data:`MAX_REPLY_BYTES`); the message says which, already printable."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None


def printable(text: str) -> str:
    """``text`` with every character a terminal could act on written as an escape
    (``\\x1b[2J``, ``\\u202e``), so a string from the network can be shown in an error line."""
    return "".join(
        ch if unicodedata.category(ch) not in _UNPRINTABLE else _escape(ch) for ch in text
    )


def _escape(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def valid_text(text: str) -> str:
    """``text`` with each lone surrogate (which UTF-8 cannot encode, so no file can hold it)
    replaced by U+FFFD; a split surrogate pair is joined."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def shown(url: str) -> str:
    """``url`` as it may be recorded or printed: no ``user:password@``, no fragment, the value
    of every query parameter that names a credential replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not parsed: its scheme and host only
        return re.sub(r"^((?:[^:/?#]*:)?//)?(?:[^/?#]*@)?([^/?#]*).*", r"\1\2", url, flags=re.S)
    query = "&".join(_hide(p) for p in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, query, ""))


def _hide(param: str) -> str:
    name, eq, _ = param.partition("=")
    secret = eq and any(s in name.lower() for s in _SECRET_PARAMS)
    return f"{name}=***" if secret else param


def endpoint_url(base: str, path: str) -> str:
    """``base/path`` (``base``'s query kept), after checking that ``base`` is an http(s) URL
    with a host and a valid port; an error names the URL without its credentials."""
    try:
        parts = urlsplit(base)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as e:
        raise DataError(
            f"--llm {printable(shown(base))}: not a URL ({printable(str(e))})"
        ) from None
    if any(c.isspace() or unicodedata.category(c) in _UNPRINTABLE for c in base):
        raise DataError(f"--llm {printable(shown(base))}: holds white space or a control character")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise DataError(
            f"--llm {printable(shown(base))}: expected http(s)://host[:port]/path, the "
            "endpoint's base URL (e.g. http://127.0.0.1:8000/v1)"
        )
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{path}", fragment=""))


def _basic(parts: SplitResult) -> str | None:
    """HTTP Basic credentials from a URL's ``user:password@``, if it has any."""
    if parts.username is None and parts.password is None:
        return None
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def _connection(
    parts: SplitResult, timeout: float
) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
    """A connection to the server, or to the proxy the environment names for it; the request
    target to send, and the headers the proxy asks for."""
    host, port = parts.hostname, parts.port
    target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        if parts.scheme == "https":
            context = ssl.create_default_context()
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
            return conn, target, {}
        return http.client.HTTPConnection(host, port, timeout=timeout), target, {}
    p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        p_port = p.port or 80
    except ValueError:
        p_port = None
    if not p.hostname or p_port is None:
        raise DataError(f"{parts.scheme}_proxy {printable(shown(proxy))}: not a proxy URL")
    auth = _basic(p)
    headers = {"Proxy-Authorization": auth} if auth else {}
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            p.hostname, p_port, timeout=timeout, context=ssl.create_default_context()
        )
        conn.set_tunnel(host, port, headers=headers)
        return conn, target, {}
    conn = http.client.HTTPConnection(p.hostname, p_port, timeout=timeout)
    return conn, urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), headers


class _Deadline:
    """Shuts down, ``timeout`` seconds from now, every socket the connection opens: a
    duplicate of each is held, so neither TLS wrapping it nor ``http.client`` handing it to
    the response hides it; a shut socket ends a blocked read (or TLS handshake) at once."""

    def __init__(self, timeout: float) -> None:
        self.expired = threading.Event()
        self._held: list[socket.socket] = []
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def open(self, *args: object, **kwargs: object) -> socket.socket:
        """``socket.create_connection``, remembered."""
        sock = socket.create_connection(*args, **kwargs)
        self._held.append(sock.dup())
        if self.expired.is_set():  # expired while connecting: too late for the timer
            sock.close()
            raise TimeoutError
        return sock

    def _expire(self) -> None:
        self.expired.set()
        for sock in list(self._held):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        for sock in self._held:
            sock.close()


def post(url: str, payload: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST ``payload`` to ``url`` and read the whole answer within ``timeout`` seconds of
    wall-clock time; credentials in ``url`` are sent as HTTP Basic authorization (in place of
    any Authorization in ``headers``). Raises :class:`NetError`."""
    parts = urlsplit(url)
    conn, target, extra = _connection(parts, timeout)
    auth = _basic(parts)
    headers = {**headers, **extra, **({"Authorization": auth} if auth else {})}
    deadline = _Deadline(timeout)
    conn._create_connection = deadline.open  # every version since 3.0 connects through it
    response = None
    try:
        conn.request("POST", target, body=payload, headers=headers)
        response = conn.getresponse()
        body = response.read(MAX_REPLY_BYTES + 1)
    except (OSError, http.client.HTTPException) as e:
        if deadline.expired.is_set() or isinstance(e, TimeoutError):
            raise NetError(f"no reply within {timeout:g} s") from None
        what = "unreachable" if isinstance(e, OSError) else "not an HTTP answer"
        raise NetError(f"{what} ({printable(str(e) or type(e).__name__)})") from None
    finally:
        deadline.close()
        if response is not None:
            response.close()
        conn.close()
    if deadline.expired.is_set():  # a body without a length ends, cut short, at the shutdown
        raise NetError(f"no reply within {timeout:g} s")
    if len(body) > MAX_REPLY_BYTES:
        raise NetError(f"the reply is larger than {MAX_REPLY_BYTES:,} bytes")
    return Answer(response.status, body, response.getheader("retry-after"))
