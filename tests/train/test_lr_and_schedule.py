import math

import numpy as np
import torch

from factdyn.rundir import init_logs
from factdyn.score.requests import Requests
from factdyn.train.distributed import World
from factdyn.train.evaluation import ProbeLogger, eval_schedule
from factdyn.train.lr import lr_at


def test_lr_schedules_resume_mid_way():
    kw = {"peak": 1.0, "warmup": 10, "total": 110, "min_ratio": 0.1}
    assert lr_at(0, schedule="cosine", **kw) == 0.1  # warmup: (0+1)/10
    assert lr_at(10, schedule="cosine", **kw) == 1.0
    assert math.isclose(lr_at(60, schedule="cosine", **kw), 0.1 + 0.9 * 0.5)
    assert math.isclose(lr_at(60, schedule="linear", **kw), 0.1 + 0.9 * 0.5)
    assert math.isclose(lr_at(35, schedule="linear", **kw), 0.1 + 0.9 * 0.75)
    assert math.isclose(lr_at(500, schedule="cosine", **kw), 0.1)
    assert lr_at(500, schedule="constant", **kw) == 1.0


def test_every_logs_all_steps_and_items_including_final():
    steps, mask = eval_schedule("every", [[0, 5], []], 2, 8, 3)
    assert steps.tolist() == list(range(9))
    assert mask.shape == (9, 2) and mask.all()


def test_sparse_logs_windows_and_log_spaced_tail():
    steps, mask = eval_schedule("sparse", [[0, 20]], window=5, total=1000, log_points=10)
    s = set(steps.tolist())
    assert set(range(0, 6)) <= s and set(range(20, 26)) <= s
    assert 1000 in s and 6 not in s and 19 not in s
    tail = steps[steps > 25] - 25
    assert len(tail) <= 10 and tail[0] == 1 and tail[-1] == 975
    ratios = tail[1:] / tail[:-1]  # log-spaced: roughly constant ratio
    assert np.allclose(ratios[3:], ratios[-1], rtol=0.2)
    assert mask.all()


def test_sparse_scores_each_item_at_its_own_steps_and_controls_everywhere():
    # item 0 injected at 0 and 20, item 1 once at 0, item 2 never (a control)
    steps, mask = eval_schedule("sparse", [[0, 20], [0], []], window=5, total=1000, log_points=10)
    own = {
        0: set(range(0, 6))
        | set(range(20, 26))
        | {25 + int(x) for x in np.geomspace(1, 975, 10).round()},
        1: set(range(0, 6)) | {5 + int(x) for x in np.geomspace(1, 995, 10).round()},
    }
    own = {i: v | {0, 1000} for i, v in own.items()}
    assert steps.tolist() == sorted(own[0] | own[1])
    for i in (0, 1):
        assert set(steps[mask[:, i]].tolist()) == own[i]
    assert mask[:, 2].all()
    _, all_items = eval_schedule("sparse", [[0, 20], [0], []], 5, 1000, 10, per_item=False)
    assert all_items.all()


def test_ranks_share_out_exactly_the_scheduled_probes(tmp_path):
    """Each logged step's scheduled probes are split across ranks without
    overlap or gap; FSDP (``split=False``) has every rank score them all."""
    # 3 items with 2 probes each: item 0 injected at 0 and 20, item 1 at 0, item 2 a control
    steps, mask = eval_schedule("sparse", [[0, 20], [0], []], window=2, total=60, log_points=4)
    probe_item = np.array([0, 0, 1, 1, 2, 2])
    requests = Requests([np.arange(k + 3) for k in range(6)], np.tile([1, 2], (6, 1)))
    init_logs(tmp_path, steps, 6, 60)
    cpu = torch.device("cpu")

    def logger(rank, size, split=True):
        world = World(rank, size, cpu)
        return ProbeLogger(tmp_path, steps, mask, requests, probe_item, world, 64, split)

    for row, step in enumerate(steps):
        want_p = {p for p in range(6) if mask[row, probe_item[p]]}
        parts = [logger(r, 2).requests_at(row) for r in range(2)]
        p_ids = [set(p[0].tolist()) for p in parts]
        assert p_ids[0] | p_ids[1] == want_p and not p_ids[0] & p_ids[1], step
        for p, ids in zip(parts, p_ids, strict=True):  # the requests are those probes' own
            assert [len(x) for x in p[1].ids] == [k + 3 for k in sorted(ids)]
        full = logger(1, 2, split=False).requests_at(row)
        assert set(full[0].tolist()) == want_p
    at = steps.tolist().index(21)  # inside item 0's second window, outside item 1's steps
    assert mask[at].tolist() == [True, False, True]
