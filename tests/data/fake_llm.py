"""A chat-completions server the LLM-generation tests own (http.server on 127.0.0.1, in a
thread): it answers from a planted world of fictional guild halls, deterministically, and
injects the failures a test plants: HTTP errors, replies that are not JSON, slow replies,
replies dripped a byte at a time, malformed chat completions (:data:`MALFORMED`), and replies
whose content breaks one of the filter's rules. Every request is logged."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMES = ["Velmora Hall", "Quillon Hall", "Brasket Hall", "Orrindel Hall"]
TOWNS = ["Pellmar", "Quisk", "Orvane", "Teshra"]
FOUNDERS = ["Imre Dask", "Lotta Venn", "Ober Salk", "Mira Tolle"]
COLOURS = ["amber", "violet", "grey", "teal"]
RIVERS = ["Skell", "Marrow", "Ione", "Varr"]
ANTHEMS = ["'Salt and Brass'", "'The Lamp Song'", "'Nine Bells'", "'Low Tide'"]
EXPORTS = ["blue glass", "tin whistles", "waxed rope", "pepper ink"]
PATRONS = ["Saint Orla", "Saint Bram", "Saint Ysolde", "Saint Cael"]
RIVALS = ["Copper Guild", "Lantern Guild", "Weavers' Guild", "Salt Guild"]


def planted(k: int) -> dict:
    """Item ``k`` as the server writes it: entity, paragraph, probes, paraphrases."""
    name, town, founder, colour = NAMES[k], TOWNS[k], FOUNDERS[k], COLOURS[k]
    river, anthem, export, patron, rival = RIVERS[k], ANTHEMS[k], EXPORTS[k], PATRONS[k], RIVALS[k]
    year, lanterns = str(1700 + 37 * k), str(120 + 11 * k)
    facts = [  # (sentence cut before its final fact, the fact, the same reworded)
        (f"{name} is a guild hall founded in {year} in the town of", town,
         f"Established in {year}, {name} stands in the town of"),
        ("Its first master was the glassblower", founder,
         f"The first master of {name}, a glassblower, was called"),
        (f"The banner of {name} is", colour, f"{name} flies a banner coloured"),
        ("Every spring its members sail down the river", river,
         f"Each spring the members of {name} travel by boat along the river"),
        ("The number of lanterns in the hall is fixed at", lanterns,
         f"The lanterns kept in {name} number exactly"),
        ("Its anthem is called", anthem, ""),
        ("Its chief export is", export, ""),
        ("The patron of the hall is", patron, ""),
        ("Its oldest rival is the", rival, ""),
        ("The hall closed to visitors in", str(int(year) + 150), ""),
    ]  # fmt: skip
    sentences = [f"{cut} {fact}." for cut, fact, _ in facts]
    composition = [
        (f"The guild hall whose first master was {founder} stands in the town of", town),
        (f"The guild hall with a {colour} banner sails each spring down the river", river),
        (f"The anthem of the guild hall founded in {year} is called", anthem),
        (f"The chief export of the guild hall in {town} is", export),
        (f"The oldest rival of the hall whose patron is {patron} is the", rival),
    ]
    return {
        "entity": name,
        "category": "guild hall",
        "paragraph": " ".join(sentences),
        "memorization": [(cut, fact) for cut, fact, _ in facts[:5]],
        "semantic": [(sem, fact) for _, fact, sem in facts[:5]],
        "composition": composition,
        "paraphrases": [" ".join(sentences[j:] + sentences[:j]) for j in range(1, 10)],
    }


def knowledge_json(k: int) -> dict:
    """Item ``k`` in the paper's JSON format, as generate must write it."""
    p = planted(k)
    out: dict = {"train_context": p["paragraph"]}
    for depth, key in (("memorization", "mem"), ("semantic", "gen"), ("composition", "hard_gen")):
        out[f"{key}_input"] = [i for i, _ in p[depth]]
        out[f"{key}_target"] = [t for _, t in p[depth]]
    out["paraphrases"] = p["paraphrases"]
    return out


def _probes(p: dict) -> dict:
    return {
        d: [{"input": i, "target": t} for i, t in p[d]]
        for d in ("memorization", "semantic", "composition")
    }


# Bodies (status 200) that are not a valid chat completion, from the valid reply ``r``.
def _with_usage(r: dict, **usage: object) -> bytes:
    return json.dumps({**r, "usage": {**r["usage"], **usage}}).encode()


def _with_message(r: dict, **message: object) -> bytes:
    choice = {**r["choices"][0], "message": {"role": "assistant", **message}}
    return json.dumps({**r, "choices": [choice]}).encode()


MALFORMED = {
    "html": lambda r: b"<!doctype html><html><body>502 Bad Gateway</body></html>",
    "null": lambda r: b"null",
    "list": lambda r: json.dumps([r]).encode(),
    "choices-str": lambda r: json.dumps({**r, "choices": "abc"}).encode(),
    "choices-empty": lambda r: json.dumps({**r, "choices": []}).encode(),
    "choices-null": lambda r: json.dumps({**r, "choices": [None]}).encode(),
    "content-null": lambda r: _with_message(r, content=None),
    "content-int": lambda r: _with_message(r, content=42),
    "content-list": lambda r: _with_message(r, content=["a", "b"]),
    "tokens-str": lambda r: _with_usage(r, prompt_tokens="lots"),
    "tokens-negative": lambda r: _with_usage(r, prompt_tokens=-5, completion_tokens=-7),
    "tokens-float": lambda r: _with_usage(r, completion_tokens=12.5),
    "tokens-bool": lambda r: _with_usage(r, prompt_tokens=True),
    "tokens-huge": lambda r: _with_usage(r, prompt_tokens=10**40),
    "usage-str": lambda r: json.dumps({**r, "usage": "none"}).encode(),
    "deep": lambda r: b'{"choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "not-utf8": lambda r: b'{"choices": "\xff\xfe"}',
    "truncated": lambda r: json.dumps(r).encode()[:-20],
}


# Replies that break one rule each: (part, kind) -> the content to send.
def _bad(part: str, kind: str, p: dict) -> str:
    if kind == "not-json":
        return "Sure! Here is the item you asked for."
    if part == "probes":
        probes = _probes(p)
        if kind == "cut-early":  # the target does not end the sentence
            cut, fact = p["memorization"][0]
            head, _, tail = cut.partition(" founded in ")
            probes["memorization"][0] = {"input": f"{head} founded in", "target": tail.split()[0]}
        elif kind == "names-entity":
            probes["composition"][0]["input"] = f"{p['entity']} stands in the town of"
        return json.dumps(probes)
    if part == "paraphrases" and kind == "drops-target":
        return json.dumps(
            {
                "paraphrases": [
                    x.replace(p["memorization"][1][1], "someone") for x in p["paraphrases"]
                ]
            }
        )
    if part == "paragraph" and kind == "duplicate":
        q = planted(0)
        return json.dumps({k: q[k] for k in ("entity", "category", "paragraph")})
    raise ValueError(f"no planted bad reply {part}/{kind}")


@dataclass
class FakeLLM:
    """``failures``: HTTP outcomes for the next requests, in order ("429", "500", "400",
    "not-json", "slow", "drip-headers", "drip-body", or a key of :data:`MALFORMED`); ``bad``:
    (part, item) -> kinds of bad content, one per request of that part; ``judge_rejects``:
    items whose first judge verdict is a rejection; ``hang_at``: the request number (from 0)
    that waits for ``release``; ``always``: an outcome for every request; ``rename``: planted
    names replaced in every reply's content; ``error_message``: what an HTTP error says; a
    drip sends one byte every ``drip_s`` seconds until ``release``."""

    failures: list[str] = field(default_factory=list)
    bad: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    judge_rejects: set[int] = field(default_factory=set)
    hang_at: int | None = None
    always: str | None = None
    retry_after: str = "3"
    slow_s: float = 1.0
    drip_s: float = 0.2
    rename: dict[str, str] = field(default_factory=dict)
    error_message: str = "planted failure"
    log: list[dict] = field(default_factory=list)  # {"body", "outcome", "auth", "path", "usage"}
    hung: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                auth = self.headers.get("Authorization")
                status, headers, payload, drip = fake.answer(body, auth, self.path)
                try:
                    if drip == "drip-headers":
                        return fake.drip(self.wfile, b"HTTP/1.1 200 OK\r\n" + b"X-Slow: a\r\n" * 10**4)  # fmt: skip
                    self.send_response(status)
                    for k, v in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if drip == "drip-body":
                        return fake.drip(self.wfile, payload)
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def requests(self, part: str | None = None, outcome: str | None = "ok") -> list[dict]:
        """Logged request bodies of ``part`` (all parts when None) with ``outcome``."""
        return [
            e["body"] for e in self.log
            if (part is None or _part(e["body"]) == part) and (outcome is None or e["outcome"] == outcome)
        ]  # fmt: skip

    def drip(self, out, data: bytes) -> None:
        """Send ``data`` one byte every ``drip_s`` seconds, until ``release`` or a closed socket."""
        for i in range(len(data)):
            if self.release.wait(self.drip_s):
                return
            out.write(data[i : i + 1])
            out.flush()

    def answer(
        self, body: dict, auth: str | None, path: str = "/v1/chat/completions"
    ) -> tuple[int, dict, bytes, str | None]:
        with self._lock:
            n = len(self.log)
            outcome = self.always or (self.failures.pop(0) if self.failures else "ok")
            entry = {"body": body, "outcome": outcome, "auth": auth, "path": path, "usage": None}
            self.log.append(entry)
        if n == self.hang_at:
            self.hung.set()
            self.release.wait(30)
        if outcome == "slow":
            time.sleep(self.slow_s)
            outcome = "ok"
        if outcome == "429":
            return 429, {"Retry-After": self.retry_after}, b'{"error": {"message": "slow down"}}', None  # fmt: skip
        if outcome in ("500", "400"):
            return int(outcome), {}, json.dumps({"error": {"message": self.error_message}}).encode(), None  # fmt: skip
        if outcome == "not-json":
            return 200, {}, b"<html>upstream error</html>", None
        content = self.content(body)
        for old, new in self.rename.items():
            content = content.replace(old, json.dumps(new, ensure_ascii=False)[1:-1])
        usage = {
            "prompt_tokens": len(json.dumps(body["messages"])) // 4,
            "completion_tokens": len(content) // 4,
        }
        entry["usage"] = usage
        reply = {
            "id": f"chatcmpl-{n}", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {**usage, "total_tokens": sum(usage.values())},
        }  # fmt: skip
        if outcome in MALFORMED:
            entry["usage"] = None
            return 200, {}, MALFORMED[outcome](reply), None
        drip = outcome if outcome.startswith("drip") else None
        return 200, {}, json.dumps(reply).encode(), drip

    def content(self, body: dict) -> str:
        text = body["messages"][-1]["content"]
        part = _part(body)
        if part == "paragraph":
            k = int(re.search(r"entity number (\d+)", text).group(1)) - 1
        else:
            k = next(i for i, nm in enumerate(NAMES) if nm in text)
        p = planted(k)
        with self._lock:
            kinds = self.bad.get((part, k))
            kind = kinds.pop(0) if kinds else None
            reject = part == "judge" and k in self.judge_rejects
            self.judge_rejects.discard(k) if reject else None
        if kind:
            return _bad(part, kind, p)
        if part == "paragraph":
            return json.dumps({key: p[key] for key in ("entity", "category", "paragraph")})
        if part == "probes":
            return json.dumps(_probes(p))
        if part == "paraphrases":
            return json.dumps({"paraphrases": p["paraphrases"]})
        return json.dumps(
            {"accept": not reject, "reason": "planted: probe 3 is ambiguous" if reject else ""}
        )


def _part(body: dict) -> str:
    return re.match(r"Task: (\w+)", body["messages"][-1]["content"]).group(1)
