"""Which comparisons the report makes from the loaded result sets: result-set dicts in, plans out (pure).

A report over ``results/`` typically holds the user's own run (one machine, one start method) beside
reference machines whose folders hold several files (a quick run, the full preset per start method,
runs under several Pythons). Comparing "every file with the first file" answers nothing a reader asked, so
the report plans three kinds of comparison, each made only where the loaded sets differ in that way:

* ``machines`` (several machines loaded): one side per machine, holding all of its files (a side's files
  are pooled, see ``compare``; several start methods or Pythons on a side stay in the match, fork with
  fork). The base is the machine of the most recently started run (after ``tox -e bench``: the run just
  made, against the references); the other machines follow in order of machine id. Where the machines
  share several start methods, they are compared under one (``fork`` first, see ``START_METHOD_ORDER``)
  and the plan says so: the start-method comparison shows how the others differ, and three full grids
  side by side would be a page nobody reads (and outside the report's time budget).
* ``start_methods`` (a machine whose sets hold several start methods): one side per start method of
  that machine, ``fork`` as the base where present. Made for the base machine if it has several, else
  for the first machine (by id) that has.
* ``python_versions`` (a machine whose sets hold several Python versions): one side per version, the
  oldest as the base; the same choice of machine.

``MAX_OTHERS`` bounds the sides compared with each base, and ``within_budget`` the case pairs compared on
one page (each planned comparison keeps at least its first other side); the plan names the sides left
out. The page's figures cost time per compared case: ``MAX_CASE_PAIRS`` keeps a report over ten full
result sets inside its 60 s budget (docs/report.md). ``ipcbench compare`` compares any number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..results.frame import machine_id_of, python_version_of
from .compare import Side

MAX_OTHERS = 2          # other sides per planned comparison
MAX_CASE_PAIRS = 1611   # case pairs compared on one page: one full preset x 3 start methods (docs/report.md)
START_METHOD_ORDER = ("fork", "forkserver", "spawn")


@dataclass
class Plan:
    kind: str                   # "machines" | "start_methods" | "python_versions"
    title: str                  # heading for the report
    base: Side
    others: list[Side]
    left_out: list[str] = field(default_factory=list)       # labels of sides not compared (caps, budget)
    note: str = ""                                           # what was narrowed, for the summary


def machine_of(rs: dict) -> str:
    return str(machine_id_of(rs))


def python_of(rs: dict) -> str:
    return str(python_version_of(rs))


def start_methods_of(rs: dict) -> set[str]:
    return {rec["case"]["start_method"] for rec in rs["cases"]}


def _version_key(v: str) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in v.replace("+", ".").split(".")[:3])


def _only_start_method(rs: dict, method: str) -> dict:
    return {**rs, "cases": [rec for rec in rs["cases"] if rec["case"]["start_method"] == method]}


def _bounded(kind: str, title: str, base: Side, others: list[Side], max_others: int) -> Plan:
    return Plan(kind, title, base, others[:max_others], [s.label for s in others[max_others:]])


def plan(sets: list[dict], max_others: int = MAX_OTHERS) -> list[Plan]:
    """The comparisons worth drawing for these result sets, in the order the report shows them."""
    by_machine: dict[str, list[dict]] = {}
    for rs in sets:
        by_machine.setdefault(machine_of(rs), []).append(rs)
    if not by_machine:
        return []
    newest = max(sets, key=lambda rs: str(rs.get("run", {}).get("started") or ""))
    base_machine = machine_of(newest)
    order = [base_machine, *sorted(m for m in by_machine if m != base_machine)]
    methods = {m: sorted(set().union(*map(start_methods_of, by_machine[m])),
                         key=lambda s: (START_METHOD_ORDER.index(s) if s in START_METHOD_ORDER else 9, s))
               for m in order}
    plans = []
    if len(order) > 1:
        sides = [Side(m, by_machine[m]) for m in order]
        shared = [sm for sm in methods[base_machine] if sum(sm in methods[m] for m in order) > 1]
        note = ""
        if len(shared) > 1:
            sm = shared[0]
            sides = [Side(s.label, [_only_start_method(rs, sm) for rs in s.sets if sm in start_methods_of(rs)])
                     if sm in methods[s.label] else s for s in sides]
            note = (f"Machines are compared under the {sm} start method only; the start-method comparison "
                    f"shows how the others differ.")
        plan_ = _bounded("machines", "Machines", sides[0], sides[1:], max_others)
        plan_.note = note
        plans.append(plan_)

    machine = next((m for m in order if len(methods[m]) > 1), None)
    if machine is not None:
        sides = [Side(f"{machine} · {sm}", [_only_start_method(rs, sm) for rs in by_machine[machine]
                                           if sm in start_methods_of(rs)]) for sm in methods[machine]]
        plans.append(_bounded("start_methods", f"Start methods on {machine}", sides[0], sides[1:], max_others))

    versions = {m: sorted({python_of(rs) for rs in by_machine[m]}, key=_version_key) for m in order}
    machine = next((m for m in order if len(versions[m]) > 1), None)
    if machine is not None:
        sides = [Side(f"{machine} · Python {v}", [rs for rs in by_machine[machine] if python_of(rs) == v])
                 for v in versions[machine]]
        plans.append(_bounded("python_versions", f"Python versions on {machine}", sides[0], sides[1:],
                              max_others))
    return plans


def case_count(side: Side) -> int:
    """Distinct cases on a side (a case in several of its files counts once)."""
    return len({(tuple(sorted(rec["case"].items())), python_of(rs)) for rs in side.sets for rec in rs["cases"]})


def within_budget(plans: list[Plan], max_pairs: int = MAX_CASE_PAIRS) -> list[Plan]:
    """The plans with other sides dropped (and named in ``left_out``) once the page holds ``max_pairs``
    case pairs, estimated as the smaller side's case count; the first other side of a plan always stays."""
    used, out = 0, []
    for p in plans:
        n_base = case_count(p.base)
        keep, dropped = [], []
        for i, other in enumerate(p.others):
            pairs = min(n_base, case_count(other))
            if i == 0 or used + pairs <= max_pairs:
                keep.append(other)
                used += pairs
            else:
                dropped.append(other.label)
        out.append(Plan(p.kind, p.title, p.base, keep, [*dropped, *p.left_out], p.note))
    return out
