"""One OpenAI-compatible chat endpoint, asked through a disk cache keyed by each request's
content, with bounded retries of our own.

Every request body (model, messages, seed, temperature, token limit, reply format) is hashed
(SHA-256 of its canonical JSON); a reply is stored as ``CACHE/<2 hex>/<hash>.json`` holding the
request and the reply, written atomically. The endpoint's URL and the API key are not part of
the key (the same model behind another server answers from the same cache) and are never
written; credentials in the URL are sent, never shown (:attr:`ChatClient.endpoint` is the URL
without them). A cached request is never sent again, so a killed generation resumes where it
stopped and a rerun with the cache reproduces its file.

The server is not trusted (:mod:`.net`): each request has a total deadline, and each reply is
validated against the schema of a chat completion (strict types, token counts whole numbers
from 0 to 2**31 - 1) before anything in it is used or stored, its text with lone surrogates
replaced. Unreachable endpoints, timeouts, 408/409/429 and 5xx answers and replies that are
not a valid chat completion are retried, ``retries`` times with exponential backoff (a 429's
Retry-After wins), then end in one :class:`DataError` naming the endpoint and what was being
asked, every string from the network escaped. A cache entry is validated the same way: one
with the wrong types, or holding another request, is named as damaged (nothing is sent or
overwritten: the cache is the record that makes a rerun reproduce its file).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from factdyn.data.llm import net
from factdyn.data.llm.net import printable
from factdyn.errors import DataError
from factdyn.files import write_json_atomic

# The environment variables holding the API key, first found wins (local servers need none).
KEY_VARIABLES: tuple[str, ...] = ("FACTDYN_LLM_API_KEY", "OPENAI_API_KEY")
RETRIED_STATUS = frozenset({408, 409, 429})
MAX_SECONDS = 86400  # a day: no wait or reply of one request needs more
MAX_RETRIES = 1000
MAX_TOKENS = 2**31 - 1  # a token count the server reports, or one asked for

TokenCount = Annotated[int, Field(ge=0, le=MAX_TOKENS)]


def check_number(option: str, value: float, least: float, most: float, above: bool = False) -> None:
    """Refuse ``value`` for ``option`` unless it is a finite number from ``least`` (excluded
    when ``above``) to ``most``; the message names the option."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and (value > least if above else value >= least) and value <= most):
        low = f"more than {least}" if above else f"at least {least}"
        raise DataError(f"generate: {option}: must be {low} and at most {most}, not {value}")


def api_key() -> str:
    """The key from the environment; a placeholder for servers that ask for none. A key an
    HTTP header cannot hold is refused without showing it (``http.client`` would quote it)."""
    for variable in KEY_VARIABLES:
        key = os.environ.get(variable, "").strip()
        if key and not (key.isascii() and key.isprintable()):
            raise DataError(f"{variable}: the API key holds characters an HTTP header cannot")
        if key:
            return key
    return "none"


@dataclass(frozen=True)
class Retry:
    """How hard to try one request: ``retries`` more times after the first, waiting
    ``backoff * 2**k`` seconds before retry ``k`` (or a 429's Retry-After), at most
    ``max_wait``; ``timeout`` seconds for one request, from connecting to its last byte."""

    retries: int = 5
    backoff: float = 1.0
    max_wait: float = 60.0
    timeout: float = 120.0

    def __post_init__(self) -> None:
        check_number("--retries", self.retries, 0, MAX_RETRIES)
        check_number("--backoff", self.backoff, 0, MAX_SECONDS)
        check_number("--timeout", self.timeout, 0, MAX_SECONDS, above=True)
        check_number("max_wait", self.max_wait, 0, MAX_SECONDS)


@dataclass(frozen=True)
class Reply:
    content: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Counts:
    """What the generation asked: requests sent over the network (retries included), retries,
    requests answered from the cache, replies received; tokens of every reply used."""

    sent: int = 0
    retries: int = 0
    from_cache: int = 0
    answered: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **by: int) -> None:
        with self._lock:
            for name, n in by.items():
                setattr(self, name, getattr(self, name) + n)

    def to_json(self) -> dict:
        return {
            "requests": {
                "asked": self.from_cache + self.answered,
                "from_cache": self.from_cache,
                "sent": self.sent,
                "retries": self.retries,
            },
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
        }


class _Retryable(Exception):
    """A failure worth asking again; ``wait`` is the server's Retry-After, if it gave one."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


class _Strict(BaseModel):
    """JSON from the network or the cache: exact types (no "12" for 12), unknown keys ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


class _Usage(_Strict):
    prompt_tokens: TokenCount | None = None
    completion_tokens: TokenCount | None = None


class _Message(_Strict):
    content: str


class _Choice(_Strict):
    message: _Message


class _Completion(_Strict):
    """What a reply must hold to be used: a first choice with text; usage, if given, valid."""

    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


class _Stored(_Strict):
    content: str
    prompt_tokens: TokenCount
    completion_tokens: TokenCount


class _Entry(_Strict):
    request: dict
    reply: _Stored


def request_key(body: dict) -> str:
    """SHA-256 of the request's canonical JSON."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ChatClient:
    """Chat completions from ``endpoint`` for ``model``, cached under ``cache``."""

    def __init__(
        self,
        endpoint: str,
        model: str,
        cache: Path,
        retry: Retry = Retry(),
        temperature: float = 0.8,
        max_tokens: int = 8192,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = net.endpoint_url(endpoint, "chat/completions")
        check_number("--max-tokens", max_tokens, 1, MAX_TOKENS)
        check_number("temperature", temperature, 0, 2)
        if not model or not is_text(model):
            raise DataError(f"generate: --llm-model: not a name: '{printable(model)}'")
        self.endpoint = printable(net.shown(endpoint))  # what is recorded and printed
        self.model, self.cache, self.retry = model, Path(cache), retry
        self.temperature, self.max_tokens, self._sleep = temperature, max_tokens, sleep
        self.counts = Counts()
        self._authorization = f"Bearer {api_key()}"

    def body(self, messages: list[dict[str, str]], seed: int) -> dict:
        """The request: everything that decides the reply, and so the cache key."""
        return {
            "model": self.model,
            "messages": messages,
            "seed": seed,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "response_format": {"type": "json_object"},
        }

    def ask(self, messages: list[dict[str, str]], seed: int, what: str) -> Reply:
        """The reply to ``messages`` (from the cache when asked before); ``what`` names the
        item and part in an error."""
        body = self.body(messages, seed)
        path = self.cache / (key := request_key(body))[:2] / f"{key}.json"
        if path.is_file():
            reply = _cached(path, body)
            self.counts.add(from_cache=1)
        else:
            reply = self._send(body, what)
            write_json_atomic(path, {"request": body, "reply": vars(reply)})
            self.counts.add(answered=1)
        self.counts.add(
            prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens
        )
        return reply

    def _send(self, body: dict, what: str) -> Reply:
        for k in range(self.retry.retries + 1):
            if k:
                self.counts.add(retries=1)
            self.counts.add(sent=1)
            try:
                return self._post(body, what)
            except _Retryable as e:
                reason, server_wait = str(e), e.wait
            if k < self.retry.retries:
                backoff = self.retry.backoff * 2.0 ** min(k, 64)
                wait = server_wait if server_wait is not None else backoff
                self._sleep(min(wait, self.retry.max_wait))
        raise DataError(
            printable(
                f"{self.endpoint}: {what}: {reason} (tried {self.retry.retries + 1} times; "
                f"replies so far are kept in {self.cache})"
            )
        )

    def _post(self, body: dict, what: str) -> Reply:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": self._authorization,
        }
        payload = json.dumps(body).encode("ascii")
        try:
            answer = net.post(self._url, payload, headers, self.retry.timeout)
        except net.NetError as e:
            raise _Retryable(str(e)) from None
        if not 200 <= answer.status < 300:
            reason = f"HTTP {answer.status} ({_error_message(answer.body)})"
            if answer.status in RETRIED_STATUS or answer.status >= 500:
                raise _Retryable(reason, _retry_after(answer.retry_after))
            raise DataError(printable(f"{self.endpoint}: {what}: {reason}"))
        return _reply(answer.body)


def is_text(text: str) -> bool:
    """``text`` can be written as UTF-8 (no lone surrogate, as a non-UTF-8 argument has)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first_error(e: ValidationError) -> str:
    """The first thing wrong, as ``where: what`` (the offending value left out)."""
    first = e.errors()[0]
    return f"{'.'.join(map(str, first['loc'])) or 'reply'}: {first['msg']}"


def _reply(raw: bytes) -> Reply:
    """The reply in a chat completion's body, validated before anything in it is used."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise _Retryable("the reply is not JSON") from None
    try:
        completion = _Completion.model_validate(data)
    except ValidationError as e:
        raise _Retryable(f"the reply is not a chat completion ({_first_error(e)})") from None
    usage = completion.usage or _Usage()
    return Reply(
        net.valid_text(completion.choices[0].message.content),
        usage.prompt_tokens or 0,
        usage.completion_tokens or 0,
    )


def _cached(path: Path, body: dict) -> Reply:
    """A stored reply to ``body``; an entry not written by this module (unreadable, the wrong
    types, another request) is named, not guessed at."""
    try:
        entry = _Entry.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, RecursionError):  # ValidationError and UnicodeDecodeError included
        entry = None
    if entry is None or entry.request != body:
        raise DataError(printable(f"{path}: damaged cache entry (delete it to ask again)"))
    stored = entry.reply
    return Reply(net.valid_text(stored.content), stored.prompt_tokens, stored.completion_tokens)


def _error_message(body: bytes) -> str:
    """What an error answer says: its ``error.message``, else its first line (200 characters)."""
    text = body[:4096].decode("utf-8", "replace")
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, RecursionError, LookupError, TypeError):
        message = None
    line = (message if isinstance(message, str) else text).strip().splitlines()
    return printable(line[0][:200] if line else "no message")


def _retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (the HTTP-date form, or nonsense, is left to the
    backoff)."""
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
