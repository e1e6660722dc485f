import numpy as np
import pytest

from factdyn.errors import DataError
from factdyn.inject.placement import IGNORE, apply_placements, plan_placements
from factdyn.inject.schedule import Injection

EOS = 0


def test_prepend_truncates_and_keeps_rest_of_batch():
    tokens = {(0, 0): [7, 8, 9, EOS]}
    pl = plan_placements([Injection(5, 0, "dup", 0)], tokens, batch_size=4, seq_len=6)
    assert pl.to_dict("records") == [
        {
            "step": 5,
            "row": 0,
            "item": 0,
            "scenario": "dup",
            "variant": 0,
            "token_start": 0,
            "token_end": 4,
        }
    ]
    batch = np.arange(100, 124).reshape(4, 6)
    ids, labels = apply_placements(batch, pl, tokens, "prepend", EOS)
    assert ids[0].tolist() == [7, 8, 9, EOS, 100, 101]  # injected + EOS, then the original row
    assert (ids[1:] == batch[1:]).all()
    assert (labels == ids).all()


def test_more_items_than_rows_share_rows():
    tokens = {(i, 0): [10 + i, EOS] for i in range(5)}
    sched = [Injection(0, i, "s", 0) for i in range(5)]
    pl = plan_placements(sched, tokens, batch_size=2, seq_len=8)
    assert pl.row.tolist() == [0, 1, 0, 1, 0]
    assert pl.token_start.tolist() == [0, 0, 2, 2, 4]
    ids, _ = apply_placements(np.full((2, 8), 99), pl, tokens, "prepend", EOS)
    assert ids[0].tolist() == [10, EOS, 12, EOS, 14, EOS, 99, 99]
    assert ids[1].tolist() == [11, EOS, 13, EOS, 99, 99, 99, 99]


def test_rows_spread_over_batch():
    tokens = {(i, 0): [1, EOS] for i in range(4)}
    pl = plan_placements([Injection(0, i, "s", 0) for i in range(4)], tokens, 16, 8)
    assert pl.row.tolist() == [0, 4, 8, 12]


def test_replace_pads_without_loss():
    tokens = {(0, 0): [5, 6, EOS]}
    pl = plan_placements([Injection(0, 0, "s", 0)], tokens, 2, 6)
    ids, labels = apply_placements(np.full((2, 6), 42), pl, tokens, "replace", EOS)
    assert ids[0].tolist() == [5, 6, EOS, EOS, EOS, EOS]
    assert labels[0].tolist() == [5, 6, EOS, IGNORE, IGNORE, IGNORE]
    assert ids[1].tolist() == [42] * 6


def test_too_long_item_is_an_error_naming_it_unless_allowed():
    tokens = {(3, 0): list(range(1, 12)) + [EOS]}
    with pytest.raises(DataError, match=r"item 3, variant 0: text is 12 tokens long"):
        plan_placements([Injection(0, 3, "s", 0)], tokens, 2, 8)
    pl = plan_placements([Injection(0, 3, "s", 0)], tokens, 2, 8, allow_truncation=True)
    assert pl.token_end.tolist() == [8]
