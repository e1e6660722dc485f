"""``generate --llm`` against a chat-completions server the test owns (tests/data/fake_llm.py):
the requests it makes, its retries and waits, the filter's rejections, the record it keeps;
the items written must be the server's planted items, validated."""

from __future__ import annotations

import json

import pytest
from fake_llm import NAMES, FakeLLM, knowledge_json
from typer.testing import CliRunner

from factdyn.cli import app
from factdyn.data.items import load_items
from factdyn.data.llm.client import ChatClient, Retry, request_key
from factdyn.data.llm.generate import Settings, write_llm_items
from factdyn.errors import DataError

SECRET = "sk-test-do-not-store-4711"


@pytest.fixture
def server():
    made: list[FakeLLM] = []

    def start(**plant) -> FakeLLM:
        made.append(FakeLLM(**plant))
        return made[-1]

    yield start
    for fake in made:
        fake.close()


def _run(fake, tmp_path, sleeps=None, out="out", **settings):
    client = ChatClient(
        fake.url, "planted-7b", tmp_path / "cache", Retry(retries=3, backoff=0.001, timeout=5),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
    )  # fmt: skip
    return write_llm_items(tmp_path / out, client, Settings(**{"items": 2, **settings}))


def _generation(tmp_path, out="out") -> dict:
    return json.loads((tmp_path / out / "generation.json").read_text())


def test_a_clean_run_writes_the_planted_items_and_its_record(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FACTDYN_LLM_API_KEY", SECRET)
    fake = server()
    r = CliRunner().invoke(
        app,
        ["generate", "--llm", fake.url, "--llm-model", "planted-7b", "--items", "3", "--out",
         str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--seed", "5",
         "--concurrency", "3", "--domain", "guild halls"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"knowledge.json", "generation.json"}
    written = json.loads((tmp_path / "out" / "knowledge.json").read_text())
    assert written == [knowledge_json(k) for k in range(3)]
    assert len(load_items(tmp_path / "out" / "knowledge.json")) == 3
    # three parts per item, each asked once; the key went in the header only
    assert sorted(len(fake.requests(part)) for part in ("paragraph", "probes", "paraphrases")) == [3, 3, 3]  # fmt: skip
    assert {e["auth"] for e in fake.log} == {f"Bearer {SECRET}"}
    for body in fake.requests():
        assert body["model"] == "planted-7b" and isinstance(body["seed"], int)
        assert body["temperature"] > 0
    assert all("guild halls" in b["messages"][-1]["content"] for b in fake.requests("paragraph"))
    record = _generation(tmp_path)
    assert record["endpoint"] == fake.url and record["model"] == "planted-7b"
    assert record["prompts_version"] == "1" and record["seed"] == 5
    assert record["requests"] == {"asked": 9, "from_cache": 0, "sent": 9, "retries": 0}
    assert record["tokens"] == {
        "prompt": sum(e["usage"]["prompt_tokens"] for e in fake.log),
        "completion": sum(e["usage"]["completion_tokens"] for e in fake.log),
    }
    assert record["rejections"] == {"total": 0}
    assert [e["name"] for e in record["entities"]] == NAMES[:3]
    # one cache file per request, keyed by its content; the key is nowhere on disk
    cached = sorted((tmp_path / "cache").rglob("*.json"))
    assert sorted(p.stem for p in cached) == sorted(request_key(b) for b in fake.requests())
    for p in [*cached, *(tmp_path / "out").iterdir()]:
        assert SECRET not in p.read_text()


def test_endpoint_failures_are_retried_with_backoff_honouring_retry_after(server, tmp_path):
    fake = server(failures=["429", "500", "not-json"], retry_after="7")
    sleeps: list[float] = []
    _run(fake, tmp_path, sleeps, concurrency=1, items=1)
    # the first request was sent four times, unchanged; Retry-After, then 2·backoff, 4·backoff
    assert [e["outcome"] for e in fake.log[:4]] == ["429", "500", "not-json", "ok"]
    assert all(e["body"] == fake.log[0]["body"] for e in fake.log[:4])
    assert sleeps == [7.0, 0.002, 0.004]
    assert _generation(tmp_path)["requests"] == {"asked": 3, "from_cache": 0, "sent": 6, "retries": 3}  # fmt: skip
    assert json.loads((tmp_path / "out" / "knowledge.json").read_text()) == [knowledge_json(0)]


def test_a_slow_reply_times_out_and_is_asked_again(server, tmp_path):
    fake = server(failures=["slow"], slow_s=1.0)
    client = ChatClient(fake.url, "m", tmp_path / "cache", Retry(retries=1, backoff=0, timeout=0.3))
    write_llm_items(tmp_path / "out", client, Settings(items=1))
    assert [e["outcome"] for e in fake.log[:2]] == ["slow", "ok"]
    assert client.counts.retries == 1


def test_rejected_parts_are_asked_again_and_every_rejection_is_counted(server, tmp_path):
    fake = server(
        bad={
            ("paragraph", 0): ["not-json"],
            ("probes", 1): ["cut-early", "names-entity"],
            ("paraphrases", 0): ["drops-target"],
        }
    )
    _run(fake, tmp_path)
    assert json.loads((tmp_path / "out" / "knowledge.json").read_text()) == [
        knowledge_json(0),
        knowledge_json(1),
    ]
    assert _generation(tmp_path)["rejections"] == {
        "total": 4,
        "reply.malformed": 1,
        "memorization.sentence_end": 1,
        "composition.names_entity": 1,
        "paraphrases.keep_targets": 1,
    }
    probes_1 = [b for b in fake.requests("probes") if NAMES[1] in b["messages"][-1]["content"]]
    assert len(probes_1) == 3 and len({b["seed"] for b in probes_1}) == 3
    # a repeated request says why the last answer was rejected
    assert "rejected" not in probes_1[0]["messages"][-1]["content"]
    assert "input + target is not a sentence" in probes_1[1]["messages"][-1]["content"]
    assert f"names '{NAMES[1]}'" in probes_1[2]["messages"][-1]["content"]
    assert _generation(tmp_path)["requests"]["sent"] == 6 + 4


def test_the_judge_rejects_probes_which_are_then_asked_again(server, tmp_path):
    fake = server(judge_rejects={1})
    _run(fake, tmp_path, judge=True, concurrency=1)
    assert len(fake.requests("judge")) == 3  # item 0 once, item 1 twice
    assert len(fake.requests("probes")) == 3
    assert "planted: probe 3 is ambiguous" in fake.requests("probes")[-1]["messages"][-1]["content"]
    assert _generation(tmp_path)["rejections"] == {"total": 1, "judge": 1}


def test_an_entity_repeated_by_a_later_item_is_made_again(server, tmp_path):
    fake = server(bad={("paragraph", 1): ["duplicate"]})
    _run(fake, tmp_path)
    assert json.loads((tmp_path / "out" / "knowledge.json").read_text()) == [
        knowledge_json(0),
        knowledge_json(1),
    ]
    assert _generation(tmp_path)["rejections"] == {"total": 1, "item.duplicate": 1}
    # item 1 asked all three parts twice (rounds 0 and 1)
    assert len(fake.requests()) == 3 + 6


def test_a_part_rejected_every_time_ends_naming_the_item(server, tmp_path):
    fake = server(bad={("probes", 1): ["cut-early"] * 2})
    with pytest.raises(DataError) as e:
        _run(fake, tmp_path, max_attempts=2)
    msg = str(e.value)
    assert fake.url in msg and "item 1: probes rejected 2 times" in msg
    assert "memorization.sentence_end" in msg
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "cache").is_dir()


def test_exhausted_retries_end_in_one_line_with_exit_2_and_the_cache_kept(
    server, tmp_path, exits_2
):
    fake = server(failures=["ok"] * 1 + ["500"] * 50)
    args = ["generate", "--llm", fake.url, "--llm-model", "m", "--items", "1", "--out",
            tmp_path / "out", "--cache", tmp_path / "cache", "--retries", "2", "--backoff", "0"]  # fmt: skip
    err = exits_2(args)
    assert fake.url in err and "item 0 (probes, attempt 1)" in err and "HTTP 500" in err
    assert "tried 3 times" in err and str(tmp_path / "cache") in err
    assert [e["outcome"] for e in fake.log] == ["ok", "500", "500", "500"]
    assert not (tmp_path / "out").exists()
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 1  # the paragraph's reply


def test_a_client_error_is_not_retried(server, tmp_path, exits_2):
    fake = server(always="400")
    err = exits_2(["generate", "--llm", fake.url, "--llm-model", "m", "--items", "1",
                   "--out", tmp_path / "out", "--cache", tmp_path / "cache"])  # fmt: skip
    assert "HTTP 400" in err and "item 0 (paragraph, attempt 1)" in err
    assert len(fake.log) == 1


def test_an_unreachable_endpoint(tmp_path, exits_2):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    err = exits_2(["generate", "--llm", url, "--llm-model", "m", "--items", "1", "--out",
                   tmp_path / "out", "--cache", tmp_path / "cache", "--retries", "1", "--backoff", "0"])  # fmt: skip
    assert url in err and "unreachable" in err and "item 0" in err


def test_options_that_need_llm(tmp_path, exits_2):
    assert "--llm-model" in exits_2(["generate", "--out", tmp_path / "o", "--llm-model", "m"])
    assert "needs --llm-model" in exits_2(
        ["generate", "--out", tmp_path / "o", "--llm", "http://x"]
    )


def test_a_damaged_cache_entry_is_named(server, tmp_path, exits_2):
    fake = server()
    _run(fake, tmp_path, items=1)
    entry = sorted((tmp_path / "cache").rglob("*.json"))[0]
    entry.write_text("{half")
    err = exits_2(["generate", "--llm", fake.url, "--llm-model", "planted-7b", "--items", "1",
                   "--out", tmp_path / "again", "--cache", tmp_path / "cache"])  # fmt: skip
    assert str(entry) in err and "damaged cache entry" in err
