"""One OpenAI-compatible chat endpoint, asked through a disk cache keyed by each request's
content, with bounded retries of our own.

Every request body (model, messages, seed, temperature, token limit, reply format) is hashed
(SHA-256 of its canonical JSON); a reply is stored as ``CACHE/<2 hex>/<hash>.json`` holding the
request and the reply, written atomically. The endpoint's URL and the API key are not part of
the key (the same model behind another server answers from the same cache) and are never
written. A cached request is never sent again, so a killed generation resumes where it stopped
and a rerun with the cache reproduces its file. The ``openai`` client's own retries are off:
unreachable endpoints, timeouts, 408/409/429 and 5xx answers and replies that are not a chat
completion are retried here, ``retries`` times with exponential backoff (a 429's Retry-After
wins), then end in one :class:`DataError` naming the endpoint and what was being asked.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import openai

from factdyn.errors import DataError
from factdyn.files import write_json_atomic

# The environment variables holding the API key, first found wins (local servers need none).
KEY_VARIABLES: tuple[str, ...] = ("FACTDYN_LLM_API_KEY", "OPENAI_API_KEY")
RETRIED_STATUS = frozenset({408, 409, 429})


def api_key() -> str:
    """The key from the environment; a placeholder for servers that ask for none."""
    return next((os.environ[v] for v in KEY_VARIABLES if os.environ.get(v)), "none")


@dataclass(frozen=True)
class Retry:
    """How hard to try one request: ``retries`` more times after the first, waiting
    ``backoff * 2**k`` seconds before retry ``k`` (or a 429's Retry-After), at most
    ``max_wait``; ``timeout`` seconds per request."""

    retries: int = 5
    backoff: float = 1.0
    max_wait: float = 60.0
    timeout: float = 120.0


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
        self.endpoint, self.model, self.cache, self.retry = endpoint, model, Path(cache), retry
        self.temperature, self.max_tokens, self._sleep = temperature, max_tokens, sleep
        self.counts = Counts()
        self._client = openai.OpenAI(
            base_url=endpoint, api_key=api_key(), max_retries=0, timeout=retry.timeout
        )

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
            reply = _cached(path)
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
                wait = server_wait if server_wait is not None else self.retry.backoff * 2**k
                self._sleep(min(wait, self.retry.max_wait))
        raise DataError(
            f"{self.endpoint}: {what}: {reason} (tried {self.retry.retries + 1} times; "
            f"replies so far are kept in {self.cache})"
        )

    def _post(self, body: dict, what: str) -> Reply:
        try:
            completion = self._client.chat.completions.create(**body)
        except openai.APITimeoutError:
            raise _Retryable(f"no reply within {self.retry.timeout:g} s") from None
        except openai.APIConnectionError as e:
            raise _Retryable(f"unreachable ({e.__cause__ or e})") from None
        except openai.APIStatusError as e:
            reason = f"HTTP {e.status_code} ({str(e.message).splitlines()[0][:200]})"
            if e.status_code in RETRIED_STATUS or e.status_code >= 500:
                raise _Retryable(reason, _retry_after(e.response)) from None
            raise DataError(f"{self.endpoint}: {what}: {reason}") from None
        except ValueError:  # the body was not JSON
            raise _Retryable("the reply is not JSON") from None
        choices = completion.choices or []
        content = choices[0].message.content if choices and choices[0].message else None
        if not isinstance(content, str):
            raise _Retryable("the reply is not a chat completion (no message content)")
        usage = completion.usage
        return Reply(
            content,
            (usage.prompt_tokens or 0) if usage else 0,
            (usage.completion_tokens or 0) if usage else 0,
        )


def _cached(path: Path) -> Reply:
    """A stored reply; a damaged file (not written by this module) is named, not guessed at."""
    try:
        return Reply(**json.loads(path.read_text(encoding="utf-8"))["reply"])
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path}: damaged cache entry (delete it to ask again)") from None


def _retry_after(response: object) -> float | None:
    """A Retry-After header in seconds (the HTTP-date form is left to the backoff)."""
    value = getattr(response, "headers", {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
