"""Probe scoring against a naive reference: one probe at a time, no batching or padding, a
full log-softmax in float64 and plain slicing; target spans found by decoding token prefixes
(character arithmetic), not by the offset mapping the scorer uses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from factdyn.data.items import DEPTHS, KnowledgeItem, Probe, save_items
from factdyn.rundir import STATS, init_logs
from factdyn.score.loading import load_model_and_tokenizer
from factdyn.score.requests import encode_probes, probe_table
from factdyn.train.distributed import World
from factdyn.train.evaluation import ProbeLogger

COLUMNS = ["item", "depth", "probe", "target_mean", "target_sum", "first", "full", "greedy"]

# " Ardenia" (with its space) is frequent, so byte-level BPE learns it as one token, while
# "Ardenia" alone splits into several: the classic case where the target on its own differs.
CORPUS = [
    "The capital of Ardenia is Velmora, a city on the river Sand.",
    "Many people in Ardenia speak the old tongue of the hills.",
    "The first queen of Ardenia was Ilsa, crowned in the year 1204.",
    "Traders from Ardenia sold salt and amber along the northern road.",
    "A bridge of grey stone crosses the river Sand near the market.",
]

LONG = (
    "Long before the founding of the northern road, when the hills were still covered by old "
    "forests and the river Sand ran wider than it does today, the traders who came to the "
    "market every spring with salt, amber and grey stone told a story about the first queen, "
    "and the story always ended with the name of the land she ruled, which was"
)

PROBES = {
    "memorization": [
        Probe("The capital of Ardenia is", "Velmora"),
        Probe("The first queen of", "Ardenia"),  # target merges with its leading space
        Probe("A", "bridge"),  # shortest text: 2-3 tokens
    ],
    "semantic": [
        Probe(LONG, "Ardenia"),  # ~20x longer than the shortest: padding in a shared batch
        Probe("People of the hills speak the old", "tongue of the hills"),
    ],
    "composition": [
        Probe("Salt was sold on the road by traders from", "Ardenia, in 1204"),
        Probe("The year the first queen was crowned:", "1204"),
    ],
}


def _items() -> list[KnowledgeItem]:
    second = {d: tuple(reversed(ps)) for d, ps in PROBES.items()}
    return [
        KnowledgeItem(" ".join(CORPUS), {d: tuple(ps) for d, ps in PROBES.items()}),
        KnowledgeItem(" ".join(reversed(CORPUS)), second, ("A paraphrase.",)),
    ]


def _make_tokenizer(root):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS * 20,
        trainers.BpeTrainer(
            vocab_size=320,
            special_tokens=["<s>", "</s>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    # a BOS token (empty offsets) as in Llama-style tokenizers
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )
    hf.save_pretrained(root)
    return hf


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("tiny-llama")
    tok = _make_tokenizer(root)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(cfg)
    # random init with std 0.02 gives near-uniform predictions; spread the logits so that
    # tokens differ and a wrong span or position would show
    with torch.no_grad():
        model.lm_head.weight.mul_(50)
    model.save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_model_and_tokenizer(str(model_dir))


def reference_span(tokenizer, ids: list[int], text: str, input_len: int) -> tuple[int, int]:
    """Token range covering the target, from character lengths of decoded prefixes."""

    def dec(k):
        return tokenizer.decode(
            ids[:k], skip_special_tokens=True, clean_up_tokenization_spaces=False
        )

    assert dec(len(ids)) == text
    ends = [len(dec(k + 1)) for k in range(len(ids))]
    starts = [0, *ends[:-1]]
    for k in range(len(ids)):
        assert text.startswith(dec(k + 1))
    hit = [k for k in range(len(ids)) if ends[k] > starts[k] and ends[k] > input_len + 1]
    assert hit == list(range(hit[0], hit[-1] + 1))
    return hit[0], hit[-1] + 1


def reference_stats(model, tokenizer, probe: Probe) -> dict:
    text = probe.input + " " + probe.target
    ids = tokenizer(text)["input_ids"]
    s, e = reference_span(tokenizer, ids, text, len(probe.input))
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    lp = [logp[k - 1, ids[k]].item() for k in range(1, len(ids))]  # lp[k-1]: token k
    target = lp[s - 1 : e - 1]
    # greedy: token by token, the argmax of the logits before it is that token
    greedy = all(int(logits[k - 1].argmax()) == ids[k] for k in range(s, e))
    return {
        "ids": ids,
        "span": (s, e),
        "target_mean": sum(target) / len(target),
        "target_sum": sum(target),
        "first": target[0],
        "full": sum(lp) / len(lp),
        "greedy": float(greedy),
    }


def _reference_table(model, tokenizer, items) -> pd.DataFrame:
    rows = []
    for k, item in enumerate(items):
        for depth in DEPTHS:
            for j, p in enumerate(item.probes[depth]):
                r = reference_stats(model, tokenizer, p)
                rows.append({"item": k, "depth": depth, "probe": j, **r})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def reference(loaded):
    return _reference_table(*loaded, _items())


def test_probe_lengths_vary_enough_to_pad(reference):
    lengths = reference["ids"].map(len)
    assert lengths.max() >= 10 * lengths.min()


@pytest.mark.parametrize("batch_tokens", [10**6, 96, 1])
def test_scores_equal_naive_reference(loaded, reference, batch_tokens):
    from factdyn.score.probes import score_items

    model, tokenizer = loaded
    got = score_items(model, tokenizer, _items(), batch_tokens=batch_tokens)
    assert list(got.columns) == COLUMNS
    assert len(got) == len(reference)
    assert got[["item", "depth", "probe"]].to_dict("records") == reference[
        ["item", "depth", "probe"]
    ].to_dict("records")
    for col in ["target_mean", "target_sum", "first", "full"]:
        np.testing.assert_allclose(got[col].to_numpy(), reference[col].to_numpy(), atol=1e-5)
    assert got["greedy"].tolist() == reference["greedy"].tolist()
    # the statistics are not degenerate: they differ between probes and between columns
    assert got["target_mean"].std() > 0.1
    assert not np.allclose(got["target_mean"], got["full"], atol=1e-3)


def test_spans_equal_reference_spans(loaded, reference):
    _, tokenizer = loaded
    reqs = encode_probes(tokenizer, _items())
    assert [tuple(s) for s in reqs.span.tolist()] == list(reference["span"])
    assert [list(x) for x in reqs.ids] == list(reference["ids"])


def test_offset_span_not_target_alone(loaded, reference):
    """'Ardenia' after a space is one token, alone it is several: a scorer that tokenized the
    target on its own (and took that many tokens from the end) would score other tokens."""
    from factdyn.score.probes import score_items

    model, tokenizer = loaded
    row = reference[(reference["item"] == 0) & (reference["depth"] == "memorization")].iloc[1]
    assert PROBES["memorization"][1].target == "Ardenia"
    s, e = row["span"]
    alone = tokenizer("Ardenia", add_special_tokens=False)["input_ids"]
    in_context = row["ids"][s:e]
    assert len(in_context) == 1 and len(alone) > 1 and alone != in_context

    got = score_items(model, tokenizer, _items()).iloc[row.name]
    assert got["target_sum"] == pytest.approx(row["target_sum"], abs=1e-5)
    # what the target-alone span would give instead
    text = PROBES["memorization"][1].text
    ids = tokenizer(text)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    naive = sum(logp[k - 1, ids[k]].item() for k in range(len(ids) - len(alone), len(ids)))
    assert abs(got["target_sum"] - naive) > 0.1


def test_bf16_close_to_fp32_reference(model_dir, reference):
    from factdyn.score.probes import score_items

    model, tokenizer = load_model_and_tokenizer(str(model_dir), dtype="bf16")
    assert next(model.parameters()).dtype == torch.bfloat16
    got = score_items(model, tokenizer, _items(), batch_tokens=128)
    assert np.isfinite(got[["target_mean", "target_sum", "first", "full"]].to_numpy()).all()
    for col in ["target_mean", "first", "full"]:
        err = np.abs(got[col].to_numpy() - reference[col].to_numpy())
        scale = np.abs(reference[col].to_numpy())
        assert (err <= 0.01 * scale + 0.05).all(), (col, err.max())


def test_score_cli_writes_parquet(model_dir, reference, tmp_path):
    import duckdb
    from typer.testing import CliRunner

    from factdyn.cli import app

    data = tmp_path / "items.json"
    save_items(_items(), data)
    out = tmp_path / "out" / "scores.parquet"
    args = ["score", "--model", str(model_dir), "--data", str(data), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--device", "cpu", "--batch-tokens", "64"])
    assert result.exit_code == 0, result.output
    assert f"{len(reference)} rows written to {out}" in result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["scores.parquet"]  # no temp left

    df = pd.read_parquet(out)
    assert list(df.columns) == COLUMNS
    np.testing.assert_allclose(df["target_mean"], reference["target_mean"], atol=1e-5)
    assert df["depth"].tolist() == reference["depth"].tolist()

    rel = duckdb.sql(f"select * from '{out}'")
    assert rel.columns == COLUMNS
    assert duckdb.sql(f"select count(*) from '{out}'").fetchall()[0][0] == len(reference)
    n_mem = duckdb.sql(
        f"select count(*) from '{out}' where depth = 'memorization' and item = 1"
    ).fetchall()[0][0]
    assert n_mem == len(PROBES["memorization"])


@pytest.mark.parametrize("batch_tokens", [10**6, 1])
@pytest.mark.parametrize("full_text", [False, True])
def test_training_logger_scores_equal_reference(
    loaded, reference, tmp_path, batch_tokens, full_text
):
    """The path training takes: probes encoded once, scored by the probe logger into the
    run's preallocated ``logprobs.npy``; ``full`` only with ``eval.full_text``, NaN without."""
    model, tokenizer = loaded
    items = _items()
    probes = encode_probes(tokenizer, items)
    probe_item = probe_table(items)["item"].to_numpy()
    steps, mask = np.array([0]), np.ones((1, len(items)), dtype=bool)
    init_logs(tmp_path, steps, len(probes), 1)
    world = World(0, 1, torch.device("cpu"))
    logger = ProbeLogger(
        tmp_path, steps, mask, probes, probe_item, world, batch_tokens, full_text=full_text
    )
    assert logger.maybe_log(0, model)

    logged = np.load(tmp_path / "logprobs.npy")[0]
    for k, col in enumerate(STATS):
        if col == "full" and not full_text:
            assert np.isnan(logged[:, k]).all()
        else:
            np.testing.assert_allclose(logged[:, k], reference[col].to_numpy(), atol=1e-5)


@pytest.fixture(scope="module")
def planted(loaded):
    """The tiny model made to produce " Ardenia" (one token) everywhere: a large logit added
    to that token at every position, so probes whose target is that one token are greedy hits
    and multi-token targets are not."""
    import copy

    model, tokenizer = loaded
    model = copy.deepcopy(model)
    (token,) = tokenizer(" Ardenia", add_special_tokens=False)["input_ids"]
    boost = torch.zeros(model.config.vocab_size)
    boost[token] = 1e4
    model.lm_head.register_forward_hook(lambda _m, _i, out: out + boost.to(out.dtype))
    return model, tokenizer


@pytest.mark.parametrize("batch_tokens", [10**6, 96, 1])
def test_greedy_flag_equals_naive_reference_planted(planted, batch_tokens):
    from factdyn.score.probes import score_items

    model, tokenizer = planted
    want = _reference_table(model, tokenizer, _items())
    got = score_items(model, tokenizer, _items(), batch_tokens=batch_tokens)
    assert got["greedy"].tolist() == want["greedy"].tolist()
    # both outcomes occur: exactly the probes whose target is " Ardenia" alone are hits
    targets = [p.target for _, d, _, p in _probe_rows(_items())]
    assert got["greedy"].tolist() == [float(t == "Ardenia") for t in targets]
    assert set(got["greedy"]) == {0.0, 1.0}


def test_greedy_is_every_target_token():
    """One miss anywhere in the span is a miss; positions outside it never count."""
    from factdyn.score.loglik import batch_stats

    ids = torch.tensor([[3, 1, 2, 0, 1], [2, 2, 0, 3, 0]])
    # the logits at position k predict token k + 1: plant argmaxes, right (*) or wrong (x)
    argmax = torch.tensor([[0, 2, 0, 9], [1, 0, 3, 0]])
    #  row 0: 1 x, 2 *, 0 *, 1 x      row 1: 2 x, 0 *, 3 *, 0 *
    logits = torch.nn.functional.one_hot(argmax.clamp(max=3), 4).float()
    logits[argmax == 9] = 0.0  # all tied: argmax is token 0
    spans = {
        ((2, 4), (2, 5)): [True, True],  # inside the hits only
        ((1, 4), (1, 5)): [False, False],  # a miss at the first target token
        ((3, 5), (1, 3)): [False, False],  # a miss at the last (row 0: tie goes to 0, not 1)
        ((2, 3), (3, 4)): [True, True],  # one-token targets
    }
    lengths = torch.tensor([5, 5])
    for (a, b), want in spans.items():
        for full in (False, True):
            got = batch_stats(logits, ids, torch.tensor([a, b]), lengths, full)[:, 4]
            assert got.tolist() == [float(w) for w in want], (a, b, full)
        # the same flags from the last positions' logits alone, as the LM head gives them
        keep = 4 - min(a[0], b[0]) + 1
        got = batch_stats(logits[:, -keep:], ids, torch.tensor([a, b]), lengths, False)[:, 4]
        assert got.tolist() == [float(w) for w in want], (a, b, keep)


def _probe_rows(items):
    return [
        (k, depth, j, p)
        for k, item in enumerate(items)
        for depth in DEPTHS
        for j, p in enumerate(item.probes[depth])
    ]


def test_logger_resuming_a_four_statistic_log_writes_the_four(loaded, reference, tmp_path):
    """A run logged before greedy existed keeps its (L, P, 4) log on resume."""
    model, tokenizer = loaded
    items = _items()
    probes = encode_probes(tokenizer, items)
    steps, mask = np.array([0]), np.ones((1, len(items)), dtype=bool)
    init_logs(tmp_path, steps, len(probes), 1)
    np.save(tmp_path / "logprobs.npy", np.full((1, len(probes), 4), np.nan, np.float32))
    world = World(0, 1, torch.device("cpu"))
    probe_item = probe_table(items)["item"].to_numpy()
    logger = ProbeLogger(tmp_path, steps, mask, probes, probe_item, world, 10**6)
    assert logger.maybe_log(0, model)
    logged = np.load(tmp_path / "logprobs.npy")[0]
    assert logged.shape == (len(probes), 4)
    np.testing.assert_allclose(logged[:, 0], reference["target_mean"].to_numpy(), atol=1e-5)
