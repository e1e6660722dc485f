"""The scorer against a plain full-logits computation, for every supported model family:
one request at a time, no padding, log_softmax over every position in float64, argmax for the
greedy flag. The scorer feeds no last token, runs the LM head on the last positions that hold
a target only and reduces only the target positions unless the whole-text statistic ``full``
is asked for; these tests hold it to the plain numbers for every batch shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from factdyn.rundir import STATS
from factdyn.score.loglik import score_requests
from factdyn.score.requests import Requests

FAMILIES = ["llama", "olmo", "gpt_neox", "gpt2"]
VOCAB = 64


def _model(arch: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    sizes = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    sizes |= {"intermediate_size": 64, "vocab_size": VOCAB}
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(arch, **sizes)).eval()
    with torch.no_grad():  # spread the logits: near-uniform ones would hide a wrong position
        model.get_output_embeddings().weight.mul_(30)
    return model


def _requests(n: int = 23, seed: int = 0) -> Requests:
    """Texts of 2-19 tokens (several widths in a batch: padding), targets of 1-5 tokens that
    end the text, as probes' do."""
    rng = np.random.default_rng(seed)
    ids, spans = [], []
    for _ in range(n):
        length = int(rng.integers(2, 20))
        t = int(rng.integers(1, min(5, length - 1) + 1))
        ids.append(rng.integers(0, VOCAB, length).astype(np.int64))
        spans.append((length - t, length))
    return Requests(ids, np.asarray(spans, dtype=np.int64))


def _reference(model, reqs: Requests) -> np.ndarray:
    rows = []
    with torch.no_grad():
        for x, (s, e) in zip(reqs.ids, reqs.span, strict=True):
            logits = model(torch.as_tensor(x)[None]).logits[0].double()
            lp = torch.log_softmax(logits, -1)[:-1].gather(1, torch.as_tensor(x[1:])[:, None])
            target = lp[s - 1 : e - 1, 0]
            greedy = bool((logits[s - 1 : e - 1].argmax(-1) == torch.as_tensor(x[s:e])).all())
            rows.append([target.mean(), target.sum(), target[0], lp.mean(), float(greedy)])
    return np.asarray(rows, dtype=np.float64)


def _make_greedy(model, reqs: Requests, every: int = 3) -> None:
    """Every ``every``-th request's target rewritten as the model's own greedy continuation,
    so that greedy hits occur beside misses."""
    with torch.no_grad():
        for x, (s, e) in list(zip(reqs.ids, reqs.span, strict=True))[::every]:
            for k in range(s, e):
                x[k] = int(model(torch.as_tensor(x[:k])[None]).logits[0, -1].argmax())


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    model = _model(request.param)
    reqs = _requests()
    _make_greedy(model, reqs)
    return model, reqs, _reference(model, reqs)


@pytest.mark.parametrize("batch_tokens", [1, 40, 10**6])
@pytest.mark.parametrize("full", [False, True])
def test_every_family_equals_full_logits_reference(family, batch_tokens, full):
    model, reqs, want = family
    got = score_requests(model, reqs, batch_tokens=batch_tokens, full=full)
    assert got.shape == (len(reqs), len(STATS))
    others = [k for k, s in enumerate(STATS) if s != "full"]
    np.testing.assert_allclose(got[:, others], want[:, others], atol=1e-5, rtol=0)
    whole = got[:, STATS.index("full")]
    if full:
        np.testing.assert_allclose(whole, want[:, STATS.index("full")], atol=1e-5, rtol=0)
    else:
        assert np.isnan(whole).all()
    assert 0 < want[:, STATS.index("greedy")].sum() < len(reqs)  # both outcomes occur


def test_head_runs_only_where_a_target_is(family):
    """Without ``full``, the LM head sees only the last positions that hold a target; with
    it, every fed position (all but each text's last token)."""
    model, reqs, _ = family
    seen = []
    hook = model.get_output_embeddings().register_forward_hook(
        lambda _m, inp, _o: seen.append(inp[0].shape[1])
    )
    try:
        score_requests(model, reqs, batch_tokens=10**6)
        score_requests(model, reqs, batch_tokens=10**6, full=True)
    finally:
        hook.remove()
    longest = int(reqs.lengths.max())
    assert seen == [longest - int(reqs.span[:, 0].min()), longest - 1]


class _NoKeep(torch.nn.Module):
    """A causal LM whose forward takes no ``logits_to_keep`` nor ``use_cache``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask)


def test_a_model_without_logits_to_keep_gives_the_same_numbers(family):
    model, reqs, want = family
    got = score_requests(_NoKeep(model), reqs, batch_tokens=40, full=True)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
