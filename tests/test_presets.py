import multiprocessing as mp

import pytest

from ipcbench.errors import UserError
from ipcbench.measure.mechanisms import all_mechanisms
from ipcbench.plan.presets import PRESETS, build_grid, get_preset, worker_counts

SEED = {"queue", "pipe_duplex", "pipe_simplex", "manager_dict", "manager_list", "manager_queue", "pool_apply",
        "pool_apply_async", "process_start", "lock",
        "simple_queue", "joinable_queue", "os_pipe", "socketpair", "thread_queue",
        "pool_map", "pool_map_chunksize1", "pool_imap", "process_pool_executor", "process_pool_executor_map",
        "pool_apply_async_callback", "pool_apply_async_window", "process_pool_executor_window", "pipe_duplex_oob",
        "shared_memory", "sharedctypes_array", "sharedctypes_array_nolock",     # beyond the seed (issue 12)
        "celery"}                                 # issue 13 (`ipcbench run` leaves it out of smoke, quick)


def test_worker_counts():
    assert worker_counts("powers", 16) == [1, 2, 4, 8, 16]
    assert worker_counts("powers", 6) == [1, 2, 4, 6]
    assert worker_counts("ends", 6) == [1, 6]
    assert worker_counts("ends", 1) == [1]


def test_smoke_grid_covers_every_mechanism_with_three_sizes_and_worker_ends():
    p = PRESETS["smoke"]
    cases = build_grid(None, None, list(p.payload_sizes), worker_counts(p.workers, 2), ["fork"], catalogue=all_mechanisms())
    assert {c.mechanism for c in cases} == SEED
    for mech in SEED - {"lock"}:
        assert {c.payload_bytes for c in cases if c.mechanism == mech} == {8, 64 * 1024, 256 * 1024}, mech
    for mech in ("pool_apply", "pool_apply_async", "manager_dict", "queue"):
        multi = [c for c in cases if c.mechanism == mech and c.pattern in ("dispatch", "rpc", "fanin")]
        assert {c.workers for c in multi} == {1, 2}, mech
    # one-to-one patterns never multiply by workers; contention moves no payload
    assert {c.workers for c in cases if c.pattern in ("roundtrip", "stream", "startup")} == {1}
    assert {c.payload_bytes for c in cases if c.pattern == "contention"} == {0}
    assert len(cases) == len(set(cases))


def test_grid_filters_and_errors():
    cases = build_grid(["pipe_duplex", "queue"], ["roundtrip"], [8], [1], ["fork"], catalogue=all_mechanisms())
    assert [(c.mechanism, c.pattern) for c in cases] == [("pipe_duplex", "roundtrip"), ("queue", "roundtrip")]
    with pytest.raises(UserError, match="unknown mechanism 'nope'"):
        build_grid(["nope"], None, [8], [1], ["fork"], catalogue=all_mechanisms())
    with pytest.raises(UserError, match="give no case"):
        build_grid(["lock"], ["roundtrip"], [8], [1], ["fork"], catalogue=all_mechanisms())
    with pytest.raises(UserError, match="unknown preset 'huge'"):
        get_preset("huge")


def test_full_preset_uses_every_start_method():
    from ipcbench.plan.presets import start_methods

    assert start_methods(PRESETS["full"].start_methods) == mp.get_all_start_methods()
    assert max(PRESETS["full"].payload_sizes) == 64 * 1024**2


def test_quick_grid_covers_every_mechanism_pattern_size_and_worker_count():
    p = PRESETS["quick"]
    workers = worker_counts(p.workers, 2)
    cases = build_grid(None, None, list(p.payload_sizes), workers, ["fork"], catalogue=all_mechanisms())
    assert {(c.mechanism, c.pattern) for c in cases} == {(m.name, pat) for m in all_mechanisms() for pat in m.patterns}
    assert len(p.payload_sizes) >= 5
    for mech in SEED - {"lock"}:
        assert {c.payload_bytes for c in cases if c.mechanism == mech} == set(p.payload_sizes), mech
    for mech in ("pool_apply", "pool_apply_async", "manager_dict", "queue"):
        multi = [c for c in cases if c.mechanism == mech and c.pattern in ("dispatch", "rpc", "fanin")]
        assert {c.workers for c in multi} == set(workers) == {1, 2}, mech


def test_presets_round_settings():
    smoke, quick, full = PRESETS["smoke"], PRESETS["quick"], PRESETS["full"]
    assert (smoke.rounds, smoke.max_rounds, smoke.case_budget_s) == (2, 2, None)     # a check, not a measurement
    assert quick.rounds == 5 and quick.max_rounds >= 20 and quick.target_ci == 0.05
    # 122 quick cases on 2 cores within 5 minutes: the run budget bounds the rounds beyond each case's minimum
    assert 0 < quick.case_budget_s and quick.run_budget_s <= 240 and quick.floor_rounds == 3 < quick.rounds
    assert full.floor_rounds is None and full.run_budget_s is None       # full: every minimum runs
    assert full.rounds >= quick.rounds and full.max_rounds >= quick.max_rounds
    assert full.case_budget_s > quick.case_budget_s and full.spec.budget_s > quick.spec.budget_s
    for p in PRESETS.values():
        assert p.max_rounds >= p.rounds >= 1
