"""compare_plan: which comparisons the report makes, on tiny hand-built result sets."""

from ipcbench.analysis.compare_plan import case_count, plan, within_budget
from tests import factories as f


def rs(machine, methods=("fork",), python="3.11.7", started="2026-11-26T10:00:00+00:00", source=None):
    cases = [f.case_record(samples_ns=[1000, 1100, 1200], start_method=m, payload_bytes=size)
             for m in methods for size in (8, 64)]
    data = f.named_set(cases, source=source or f"results/{machine}/{python}-{'-'.join(methods)}.json",
                       machine_id=machine, python_version=python)
    data["run"]["started"] = started
    return data


def methods_of(side):
    return sorted({c["case"]["start_method"] for s in side.sets for c in s["cases"]})


def test_one_machine_one_method_one_python_plans_nothing():
    assert plan([rs("a")]) == []
    assert plan([rs("a"), rs("a", started="2026-11-27T00:00:00+00:00")]) == []     # a repeat: same setup


def test_machines_base_is_the_newest_run_and_each_side_holds_all_files_of_its_machine():
    sets = [rs("ref-b"), rs("ref-b", methods=("spawn",)), rs("ref-a"),
            rs("mine", started="2026-11-26T12:00:00+00:00")]
    plans = plan(sets)
    machines = plans[0]
    assert machines.kind == "machines"
    assert machines.base.label == "mine"
    assert [s.label for s in machines.others] == ["ref-a", "ref-b"]
    assert len(machines.others[1].sets) == 2 and methods_of(machines.others[1]) == ["fork", "spawn"]
    assert machines.left_out == []
    # ref-b holds two start methods: compared on that machine, fork first
    (methods,) = [p for p in plans if p.kind == "start_methods"]
    assert methods.title == "Start methods on ref-b"
    assert methods.base.label == "ref-b · fork" and [s.label for s in methods.others] == ["ref-b · spawn"]
    assert methods_of(methods.base) == ["fork"] and methods_of(methods.others[0]) == ["spawn"]


def test_a_file_with_every_start_method_is_split_per_method_and_the_cap_names_what_is_left_out():
    full = rs("m", methods=("spawn", "forkserver", "fork"))
    (p,) = plan([full], max_others=1)
    assert p.kind == "start_methods"
    assert [methods_of(s) for s in [p.base, *p.others]] == [["fork"], ["forkserver"]]
    assert len(p.base.sets[0]["cases"]) == 2                    # only the fork cases of the file
    assert p.left_out == ["m · spawn"]
    assert len(full["cases"]) == 6                              # the loaded set itself is untouched


def test_python_versions_are_ordered_by_version_not_by_text_and_prefer_the_base_machine():
    sets = [rs("other", python="3.12.1"), rs("other", python="3.13.0"),
            rs("mine", python="3.10.13", started="2026-11-27T00:00:00+00:00"),
            rs("mine", python="3.9.18"), rs("mine", python="3.13.0")]
    plans = plan(sets)
    assert [p.kind for p in plans] == ["machines", "python_versions"]
    versions = plans[1]
    assert versions.title == "Python versions on mine"
    assert versions.base.label == "mine · Python 3.9.18"
    assert [s.label for s in versions.others] == ["mine · Python 3.10.13", "mine · Python 3.13.0"]


def test_machines_beyond_the_cap_are_named_not_compared():
    sets = [rs(m) for m in ("c", "b", "a", "d")] + [rs("new", started="2026-12-01T00:00:00+00:00")]
    (p,) = plan(sets, max_others=2)
    assert p.base.label == "new" and [s.label for s in p.others] == ["a", "b"]
    assert p.left_out == ["c", "d"]


def test_machines_sharing_several_start_methods_are_compared_under_fork_and_the_plan_says_so():
    sets = [rs("a", methods=("spawn", "fork")), rs("b", methods=("fork", "spawn", "forkserver"),
                                                   started="2026-11-27T00:00:00+00:00")]
    machines, methods = plan(sets)
    assert (machines.base.label, [s.label for s in machines.others]) == ("b", ["a"])
    assert methods_of(machines.base) == methods_of(machines.others[0]) == ["fork"]
    assert "under the fork start method only" in machines.note
    assert methods.title == "Start methods on b"
    assert [s.label for s in [methods.base, *methods.others]] == ["b · fork", "b · forkserver", "b · spawn"]


def test_a_base_with_one_start_method_is_matched_as_it_is():
    sets = [rs("ref", methods=("fork", "spawn")), rs("mine", started="2026-11-27T00:00:00+00:00")]
    machines = plan(sets)[0]
    assert machines.note == "" and methods_of(machines.others[0]) == ["fork", "spawn"]


def test_the_page_budget_drops_later_sides_but_keeps_the_first_of_each_comparison():
    sets = [rs("a", methods=("fork", "spawn", "forkserver")), rs("b"), rs("c"),
            rs("new", started="2026-11-27T00:00:00+00:00")]
    machines, methods = plan(sets)
    assert [case_count(s) for s in [machines.base, *machines.others]] == [2, 6, 2]     # a: 3 start methods
    assert len(machines.others) == 2 and machines.left_out == ["c"]               # MAX_OTHERS
    machines, methods = within_budget([machines, methods], max_pairs=3)
    assert [s.label for s in machines.others] == ["a"] and machines.left_out == ["b", "c"]
    assert [s.label for s in methods.others] == ["a · forkserver"] and methods.left_out == ["a · spawn"]
    unbounded = within_budget(plan(sets), max_pairs=100)
    assert [len(p.others) for p in unbounded] == [2, 2]
