"""``generate --llm`` against a hostile server (tests/data/fake_llm.py planting each misbehaviour):
a total deadline per request, every reply validated before use, strings from the network
escaped before they are printed, credentials in the URL never recorded or printed, a damaged
cache named, and every numeric option checked before anything is asked."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import threading
import time

import pytest
from fake_llm import MALFORMED, NAMES, FakeLLM, knowledge_json
from typer.testing import CliRunner

from factdyn.cli import app
from factdyn.data.llm import net, prompts
from factdyn.data.llm.client import ChatClient, Retry
from factdyn.errors import DataError

ESC = "\x1b[2J\x1b]0;owned\x07\u202e"  # clear the screen, set the title, reverse the text


@pytest.fixture
def server():
    with contextlib.ExitStack() as stack:

        def start(**plant) -> FakeLLM:
            fake = FakeLLM(**plant)
            stack.callback(fake.close)
            return fake

        yield start


def _args(url: str, tmp_path, *more: str, out: str = "out") -> list[str]:
    return ["generate", "--llm", url, "--llm-model", "planted-7b", "--items", "1",
            "--out", str(tmp_path / out), "--cache", str(tmp_path / "cache"), *more]  # fmt: skip


def _ok(args: list[str]) -> str:
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return r.output


def _generation(tmp_path, out: str = "out") -> dict:
    return json.loads((tmp_path / out / "generation.json").read_text())


def _files(*folders) -> str:
    return "".join(p.read_text() for f in folders for p in sorted(f.rglob("*")) if p.is_file())


# ---- 1. a total deadline --------------------------------------------------------------------


@pytest.mark.parametrize("drip", ["drip-headers", "drip-body"])
def test_a_server_dripping_bytes_cannot_hold_a_request_past_the_timeout(server, tmp_path, drip):
    fake = server(always=drip, drip_s=0.05)  # 20 bytes a second: each read well inside 0.5 s
    client = ChatClient(fake.url, "m", tmp_path / "cache", Retry(retries=0, timeout=0.5))
    outcome: list[BaseException | None] = []

    def ask() -> None:
        try:
            client.ask(prompts.paragraph("guild halls", 1, "Ve", None), 1, "item 0 (paragraph)")
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - the test reports it
            outcome.append(e)

    start = time.monotonic()
    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    asker.join(5)
    took = time.monotonic() - start
    assert not asker.is_alive(), "the request outlived its 0.5 s deadline by 4.5 s"
    assert took < 1.5, took
    assert isinstance(outcome[0], DataError), outcome
    assert "no reply within 0.5 s" in str(outcome[0])


def test_a_dripping_server_ends_in_one_line_after_the_retries(server, tmp_path, exits_2):
    fake = server(always="drip-body", drip_s=0.05)
    start = time.monotonic()
    err = exits_2(_args(fake.url, tmp_path, "--timeout", "0.4", "--retries", "1", "--backoff", "0"))
    assert time.monotonic() - start < 2.5
    assert "no reply within 0.4 s" in err and "tried 2 times" in err
    assert len(fake.log) == 2 and not (tmp_path / "out").exists()


# ---- 2. every reply validated ---------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_reply_is_retried_then_one_line(server, tmp_path, exits_2, kind):
    fake = server(always=kind)
    err = exits_2(_args(fake.url, tmp_path, "--retries", "1", "--backoff", "0"))
    assert "item 0 (paragraph, attempt 1)" in err and "tried 2 times" in err
    assert "the reply is not JSON" in err or "the reply is not a chat completion" in err
    assert len(fake.log) == 2
    assert not (tmp_path / "out").exists() and not list((tmp_path / "cache").rglob("*.json"))


def test_malformed_replies_are_asked_again_and_none_reaches_the_record(server, tmp_path):
    fake = server(failures=["tokens-negative", "tokens-str", "null", "html", "tokens-huge"])
    _ok(_args(fake.url, tmp_path, "--concurrency", "1", "--backoff", "0"))
    planted = ["tokens-negative", "tokens-str", "null", "html", "tokens-huge"]
    assert [e["outcome"] for e in fake.log[:6]] == [*planted, "ok"]
    record = _generation(tmp_path)
    assert record["requests"] == {"asked": 3, "from_cache": 0, "sent": 8, "retries": 5}
    used = [e["usage"] for e in fake.log if e["outcome"] == "ok"]
    assert record["tokens"] == {
        "prompt": sum(u["prompt_tokens"] for u in used),
        "completion": sum(u["completion_tokens"] for u in used),
    }
    assert min(record["tokens"].values()) > 0
    assert json.loads((tmp_path / "out" / "knowledge.json").read_text()) == [knowledge_json(0)]


def test_a_reply_larger_than_the_limit_is_not_read_whole(server, tmp_path, exits_2, monkeypatch):
    monkeypatch.setattr(net, "MAX_REPLY_BYTES", 500)
    fake = server()
    err = exits_2(_args(fake.url, tmp_path, "--retries", "1", "--backoff", "0"))
    assert "the reply is larger than 500 bytes" in err and len(fake.log) == 2


@pytest.mark.parametrize("header", ["nan", "inf", "1e400", "-5", "soon"])
def test_a_nonsense_retry_after_falls_back_to_the_backoff(server, tmp_path, header):
    fake = server(failures=["429"], retry_after=header)
    sleeps: list[float] = []
    retry = Retry(retries=1, backoff=0.25)
    client = ChatClient(fake.url, "m", tmp_path / "cache", retry, sleep=sleeps.append)
    client.ask(prompts.paragraph("guild halls", 1, "Ve", None), 1, "item 0")
    assert sleeps == ([0.0] if header == "-5" else [0.25])


# ---- 3. strings from the network escaped ----------------------------------------------------


def _assert_escaped(err: str) -> None:
    assert not any(c in err for c in "\x1b\x07\u202e"), repr(err)
    assert "\\x1b[2J\\x1b]0;owned\\x07\\u202e" in err


def test_an_error_message_from_the_server_is_printed_escaped(server, tmp_path, exits_2):
    fake = server(always="400", error_message=f"bad request {ESC}")
    _assert_escaped(exits_2(_args(fake.url, tmp_path)))


def test_a_model_reply_quoted_in_a_rejection_is_printed_escaped(server, tmp_path, exits_2):
    fake = server(rename={NAMES[0]: ESC + NAMES[0]}, bad={("probes", 0): ["names-entity"] * 4})
    err = exits_2(_args(fake.url, tmp_path))
    assert "item 0: probes rejected 4 times" in err
    _assert_escaped(err)


def test_an_entity_name_in_a_duplicate_error_is_printed_escaped(server, tmp_path, exits_2):
    fake = server(rename={NAMES[0]: ESC + NAMES[0]}, bad={("paragraph", 1): ["duplicate"] * 4})
    err = exits_2(_args(fake.url, tmp_path, "--items", "2", "--concurrency", "1"))
    assert "item 1: the entity" in err and "repeats an earlier item's 4 times" in err
    _assert_escaped(err)


def test_an_escape_in_the_url_is_printed_escaped(tmp_path, exits_2):
    err = exits_2(_args(f"http://127.0.0.1:1/v1{ESC}", tmp_path, "--retries", "0"))
    _assert_escaped(err)


# ---- 4. credentials never recorded or printed -----------------------------------------------

KEY = "KEY-sk-4711"


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://user:{KEY}@") + f"?api-version=2&api_key=Q{KEY}"


def test_credentials_in_the_url_are_sent_but_never_written(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FACTDYN_LLM_API_KEY", f"ENV{KEY}")
    fake = server()
    printed = _ok(_args(_with_credentials(fake.url), tmp_path))
    assert _generation(tmp_path)["endpoint"] == f"{fake.url}?api-version=2&api_key=***"
    assert KEY not in printed + _files(tmp_path / "out", tmp_path / "cache")
    basic = base64.b64encode(f"user:{KEY}".encode()).decode()
    assert {e["auth"] for e in fake.log} == {f"Basic {basic}"}
    assert {e["path"] for e in fake.log} == {f"/v1/chat/completions?api-version=2&api_key=Q{KEY}"}


@pytest.mark.parametrize("fault", ["500", "unreachable", "bad port"])
def test_credentials_in_the_url_are_in_no_error_line(server, tmp_path, exits_2, fault, monkeypatch):
    monkeypatch.setenv("FACTDYN_LLM_API_KEY", f"ENV{KEY}")
    url = {"500": server(always="500").url, "unreachable": "http://127.0.0.1:1/v1"}.get(
        fault, "http://127.0.0.1:x1/v1"
    )
    err = exits_2(_args(_with_credentials(url), tmp_path, "--retries", "1", "--backoff", "0"))
    assert KEY not in err and "user:" not in err and "api_key=***" in err


def test_a_key_no_header_can_hold_is_refused_unshown(tmp_path, exits_2, monkeypatch):
    """http.client would quote the whole header value in its error."""
    monkeypatch.setenv("FACTDYN_LLM_API_KEY", f"{KEY}\r\nX-Injected: 1")
    err = exits_2(_args("http://127.0.0.1:1/v1", tmp_path))
    assert "FACTDYN_LLM_API_KEY" in err and KEY not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_a_url_with_white_space_is_refused_before_its_query_reaches_an_error(tmp_path, exits_2):
    err = exits_2(_args(f"http://127.0.0.1:1/v1 x?api_key={KEY}", tmp_path))
    assert "white space" in err and KEY not in err


@pytest.mark.parametrize("proxy", [f"http://u:{KEY}@proxy:port", "http://"])
def test_a_broken_proxy_setting_is_one_line(tmp_path, exits_2, monkeypatch, proxy):
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", proxy)
    err = exits_2(_args("http://llm.invalid/v1", tmp_path))
    assert "http_proxy" in err and "not a proxy URL" in err and KEY not in err


def test_a_proxy_named_by_the_environment_is_used(server, tmp_path, monkeypatch):
    fake = server()
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", fake.url.removesuffix("/v1"))
    _ok(_args("http://llm.invalid/v1", tmp_path))
    assert {e["path"] for e in fake.log} == {"http://llm.invalid/v1/chat/completions"}


# ---- 5. the cache ---------------------------------------------------------------------------


def test_a_lone_surrogate_in_a_reply_is_replaced_the_same_way_fresh_and_cached(server, tmp_path):
    fake = server(rename={"guild hall": "guild\ud800 hall"})
    _ok(_args(fake.url, tmp_path))
    assert _generation(tmp_path)["entities"][0]["category"] == "guild\ufffd hall"
    written = (tmp_path / "out" / "knowledge.json").read_bytes()
    assert "guild\ufffd hall" in json.loads(written)[0]["train_context"]
    n = len(fake.log)
    _ok(_args(fake.url, tmp_path, out="again"))
    assert len(fake.log) == n  # all from the cache, and the same file
    assert (tmp_path / "again" / "knowledge.json").read_bytes() == written


DAMAGE = {
    "content is a number": lambda e: e["reply"].update(content=5),
    "tokens are a string": lambda e: e["reply"].update(prompt_tokens="lots"),
    "tokens are negative": lambda e: e["reply"].update(completion_tokens=-1),
    "tokens are a float": lambda e: e["reply"].update(completion_tokens=1.5),
    "a key is missing": lambda e: e["reply"].pop("content"),
    "the reply is null": lambda e: e.update(reply=None),
    "the entry is a list": lambda e: e.update(reply=[e["reply"]]),
    "another request": lambda e: e["request"].update(seed=e["request"]["seed"] + 1),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_cache_entry_with_the_right_keys_and_wrong_types_is_named(
    server, tmp_path, exits_2, damage
):
    """Named, not asked again: the cache is the record a rerun reproduces its file from."""
    fake = server()
    _ok(_args(fake.url, tmp_path))
    entry = sorted((tmp_path / "cache").rglob("*.json"))[0]
    stored = json.loads(entry.read_text())
    DAMAGE[damage](stored)
    entry.write_text(json.dumps(stored))
    before, n = entry.read_bytes(), len(fake.log)
    err = exits_2(_args(fake.url, tmp_path, out="again"))
    assert str(entry) in err and "damaged cache entry" in err
    assert len(fake.log) == n and entry.read_bytes() == before
    assert not (tmp_path / "again").exists()


# ---- 6. numeric options ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value",
    [("--timeout", "-1"), ("--timeout", "0"), ("--timeout", "1e300"), ("--backoff", "-1"),
     ("--retries", "-1"), ("--retries", "100000"), ("--max-tokens", "0"),
     ("--concurrency", "0"), ("--concurrency", "100000"), ("--items", "0"),
     ("--paraphrases", "0")],
)  # fmt: skip
def test_a_number_out_of_range_is_refused_naming_the_option(tmp_path, exits_2, option, value):
    """(nan and inf on the command line: tests/faults/test_budgets.py, for every command.)"""
    err = exits_2(_args("http://127.0.0.1:1/v1", tmp_path, option, value))
    assert f"generate: {option}: must be" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "make, option",
    [(lambda v: Retry(timeout=v), "--timeout"), (lambda v: Retry(backoff=v), "--backoff"),
     (lambda v: ChatClient("http://h/v1", "m", "c", temperature=v), "temperature")],
)  # fmt: skip
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_the_library_refuses_nan_and_infinity_too(make, option, value):
    with pytest.raises(DataError, match=f"generate: {option}: must be .*, not {value}"):
        make(value)


def test_a_domain_that_is_not_utf8_is_refused(tmp_path, exits_2):
    err = exits_2(_args("http://127.0.0.1:1/v1", tmp_path, "--domain", "halls \udcff"))
    assert "--domain" in err and "\\udcff" in err
