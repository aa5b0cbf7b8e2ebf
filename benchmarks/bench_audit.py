"""Reconstruction auditor vs classic baselines, measured in the same run.

Workloads
---------
* attacks (N_ATTACK records with quasi-identifiers age/region/sex):
  differencing, Denning's general tracker, and Dinur-Nissim random
  subset-sum on a small sub-population (explicit id sets); each run by one
  agent, split round-robin across three agents of one org, and across two
  colluding orgs. The auditor pools history per org (agents) and per
  coalition (orgs); the baselines are given the same pooled history.
* benign analytics (N records): overlapping age-range, region/sex group-by
  and mixed range-within-region SUMs.
* random half-size id sets (the auditor's worst case: every record becomes
  its own cell): 2,000 answered at N = 10,000 on the default auditor (the
  scope moves to the dense engine), and the same query sequence on the
  sparse engine alone (``dense_switch_entries=None``) in the same run, until
  its time budget.

Defences: the auditor; query-set-size restriction (answer only when
k <= |S| <= N - k, k = 5); overlap restriction (Dobkin-Jones-Lipton: size
restriction plus |S ∩ S'| <= r for every answered S', r = 1).

Reported: share of attack instances stopped before any record is disclosed
(checked independently with exact rational elimination, python-flint
fmpq_mat), share of benign queries denied, per-query audit cost as the
history grows (PNG), auditor state size.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flint
import numpy as np

from policy.auditor import Auditor, scope_key

K_SIZE = 5
R_OVERLAP = 1


# ----------------------------------------------------------------------------- data


@dataclass
class People:
    n: int
    age: np.ndarray
    region: np.ndarray
    sex: np.ndarray


def people(n: int, seed: int) -> People:
    rng = np.random.default_rng(seed)
    return People(n, rng.integers(18, 91, n), rng.integers(0, 10, n), rng.integers(0, 2, n))


# ----------------------------------------------------------------------------- defences


class Defence:
    name = "?"

    def audit(self, key: str, sel: np.ndarray) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


class AuditorDefence(Defence):
    name = "auditor"

    def __init__(self, n: int) -> None:
        self.a = Auditor(range(n))

    def audit(self, key: str, sel: np.ndarray) -> bool:
        return self.a.audit(key, "sum", sel).allow


class SizeRestriction(Defence):
    name = f"size k>={K_SIZE}"

    def __init__(self, n: int) -> None:
        self.n = n

    def audit(self, key: str, sel: np.ndarray) -> bool:
        return K_SIZE <= sel.shape[0] <= self.n - K_SIZE


class OverlapRestriction(Defence):
    name = f"overlap r<={R_OVERLAP}"

    def __init__(self, n: int) -> None:
        self.n = n
        self.hist: dict[str, list[np.ndarray]] = {}

    def audit(self, key: str, sel: np.ndarray) -> bool:
        if not K_SIZE <= sel.shape[0] <= self.n - K_SIZE:
            return False
        mask = np.zeros(self.n, dtype=np.bool_)
        mask[sel] = True
        prev = self.hist.setdefault(key, [])
        if any(int(np.count_nonzero(mask & m)) > R_OVERLAP for m in prev):
            return False
        prev.append(mask)
        return True


DEFENCES: dict[str, Callable[[int], Defence]] = {
    "auditor": AuditorDefence,
    "size": SizeRestriction,
    "overlap": OverlapRestriction,
}


# ----------------------------------------------------------------------------- oracle


def disclosed(answered: list[np.ndarray]) -> int:
    """Number of records whose value the answered sums determine (exact, over Q)."""
    if not answered:
        return 0
    cols = np.unique(np.concatenate(answered))
    pos = {int(c): j for j, c in enumerate(cols)}
    m = flint.fmpq_mat(len(answered), len(cols))
    for i, s in enumerate(answered):
        for c in s.tolist():
            m[i, pos[c]] = 1
    rref, rank = m.rref()
    count = 0
    for i in range(rank):
        nz = sum(1 for j in range(len(cols)) if rref[i, j] != 0)
        count += nz == 1
    return count


# ----------------------------------------------------------------------------- attacks

Query = tuple[str, str, np.ndarray]  # (org, agent, selection)


def _victim(p: People, rng: np.random.Generator) -> int:
    key = p.age * 100 + p.region * 10 + p.sex
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    uniques = first[counts == 1]
    return int(rng.choice(uniques))


def differencing(p: People, rng: np.random.Generator) -> list[np.ndarray]:
    v = _victim(p, rng)
    region = p.region == p.region[v]
    c = (p.age == p.age[v]) & region & (p.sex == p.sex[v])
    return [np.flatnonzero(region), np.flatnonzero(region & ~c)]


def general_tracker(p: People, rng: np.random.Generator) -> list[np.ndarray]:
    v = _victim(p, rng)
    c = (p.age == p.age[v]) & (p.region == p.region[v]) & (p.sex == p.sex[v])
    t = p.age < 50
    # value(C) = q(C|T) + q(C|~T) - q(T) - q(~T); ordered so that round-robin
    # splitting leaves each single requester's share harmless
    return [np.flatnonzero(m) for m in (t, c | t, ~t, c | ~t)]


def subset_sum(p: People, rng: np.random.Generator) -> list[np.ndarray]:
    group = rng.choice(p.n, size=24, replace=False)
    out = []
    for _ in range(2 * group.shape[0]):
        s = group[rng.random(group.shape[0]) < 0.5]
        out.append(np.sort(s) if s.shape[0] else group[:2])
    return out


ATTACKS: dict[str, Callable[[People, np.random.Generator], list[np.ndarray]]] = {
    "differencing": differencing,
    "general tracker": general_tracker,
    "subset-sum (Dinur-Nissim)": subset_sum,
}
SPLITS = {
    "one agent": ("agent", lambda i: ("A", "a0")),
    "3 agents, 1 org": ("org", lambda i: ("A", f"a{i % 3}")),
    "2 colluding orgs": ("coalition", lambda i: (("A", "B")[i % 2], f"x{i % 2}")),
}
COALITIONS = [["A", "B"]]


def run_attacks(n: int, instances: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    p = people(n, seed)
    # stopped[defence][attack] = [stopped?, ...] over instances x splits
    stopped: dict[str, dict[str, list[bool]]] = {d: {a: [] for a in ATTACKS} for d in DEFENCES}
    unaudited_disclosing = 0
    total = 0
    for aname, gen in ATTACKS.items():
        for _ in range(instances):
            sets = gen(p, rng)
            total += 1
            unaudited_disclosing += disclosed(sets) > 0
            for scope, who in SPLITS.values():
                for dname, make in DEFENCES.items():
                    d = make(n)
                    answered = []
                    for i, s in enumerate(sets):
                        org, agent = who(i)
                        key = scope_key(scope, requester_org=org, agent=agent, coalitions=COALITIONS)
                        if d.audit(key, s):
                            answered.append(s)
                    stopped[dname][aname].append(disclosed(answered) == 0)
    return {
        "records": n,
        "instances_per_attack": instances,
        "splits": list(SPLITS),
        "unaudited_instances_disclosing": f"{unaudited_disclosing}/{total}",
        "stopped_share": {d: {a: sum(v) / len(v) for a, v in per.items()} for d, per in stopped.items()},
        "stopped_share_all": {
            d: sum(sum(v) for v in per.values()) / sum(len(v) for v in per.values())
            for d, per in stopped.items()
        },
    }


# ----------------------------------------------------------------------------- benign


def benign_queries(p: People, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    while len(out) < count:
        r = rng.random()
        if r < 0.4:  # overlapping age ranges
            lo = int(rng.integers(18, 85))
            m = (p.age >= lo) & (p.age <= lo + int(rng.integers(3, 25)))
            out.append(np.flatnonzero(m))
        elif r < 0.7:  # group by region x sex (a batch of cells)
            for reg in range(10):
                for sx in range(2):
                    out.append(np.flatnonzero((p.region == reg) & (p.sex == sx)))
        else:  # range within a region
            lo = int(rng.integers(18, 80))
            m = (p.age >= lo) & (p.age <= lo + int(rng.integers(5, 30)))
            out.append(np.flatnonzero(m & (p.region == rng.integers(0, 10))))
    return out[:count]


def run_benign(n: int, answered_target: int, seed: int) -> dict[str, Any]:
    p = people(n, seed)
    queries = benign_queries(p, answered_target, seed + 1)
    res: dict[str, Any] = {"records": n, "queries": len(queries)}
    auditor = Auditor(range(n))
    times: list[float] = []
    hist: list[int] = []
    denied: dict[str, int] = {}
    for dname, make in DEFENCES.items():
        d = AuditorDefence.__new__(AuditorDefence) if dname == "auditor" else make(n)
        if dname == "auditor":
            d.a = auditor
        den = 0
        for s in queries:
            t0 = time.perf_counter()
            ok = d.audit("org:benign", s)
            if dname == "auditor":
                times.append(time.perf_counter() - t0)
                hist.append(auditor.status()["org:benign"].history)
            den += not ok
        denied[dname] = den
    st = auditor.status()["org:benign"]
    ms = np.asarray(times) * 1e3
    res.update(
        denied_share={k: v / len(queries) for k, v in denied.items()},
        auditor_answered=st.history,
        auditor_rank=st.rank,
        auditor_atoms=st.atoms,
        median_ms=float(np.median(ms)),
        p99_ms=float(np.percentile(ms, 99)),
        max_ms=float(ms.max()),
        state_json_bytes=len(json.dumps(auditor.to_state())),
        curve=(hist, ms.tolist()),
    )
    return res


def _id_set_run(
    n: int, answered_target: int, seed: int, budget_s: float, *, dense: bool
) -> tuple[Auditor, list[float], list[int], list[float]]:
    """Random half-size id sets on one scope until the target, the time budget or the work cap.

    ``dense=False`` keeps the scope on the sparse engine (the engine before
    the dense one existed, same code path), for the old-vs-new comparison.
    """
    rng = np.random.default_rng(seed)
    auditor = Auditor(range(n)) if dense else Auditor(range(n), dense_switch_entries=None)
    times: list[float] = []
    hist: list[int] = []
    capped: list[float] = []
    start = time.perf_counter()
    while len(times) < answered_target and time.perf_counter() - start < budget_s:
        s = np.flatnonzero(rng.random(n) < 0.5)
        t0 = time.perf_counter()
        d = auditor.audit("org:rand", "sum", s)
        dt = time.perf_counter() - t0
        if d.reason == "AUDIT_CAPACITY":
            capped.append(dt)
            if len(capped) >= 50:
                break
            continue
        times.append(dt)
        hist.append(auditor.status()["org:rand"].history)
    return auditor, times, hist, capped


def _window(ms: np.ndarray, upto: int, width: int) -> np.ndarray:
    """Per-decision times of the answered queries ``upto - width + 1 .. upto`` (1-based)."""
    return ms[max(0, upto - width) : upto]


def run_random_subsets(
    n: int, answered_target: int, seed: int, budget_s: float, old_budget_s: float
) -> dict[str, Any]:
    """Explicit id sets, the worst case: the dense engine, and the sparse engine in the same run.

    Both see the same query sequence. The sparse engine is stopped by its time
    budget or its work cap (``SPARSE_MAX_ENTRIES``); the figures compare the
    two at the history the sparse engine reached, and give the dense engine's
    at the target.
    """
    auditor, times, hist, capped = _id_set_run(n, answered_target, seed, budget_s, dense=True)
    st = auditor.status()["org:rand"]
    ms = np.asarray(times) * 1e3
    width = max(1, answered_target // 10)
    last = _window(ms, len(ms), width)
    old_auditor, old_times, old_hist, old_capped = _id_set_run(
        n, answered_target, seed, old_budget_s, dense=False
    )
    old_ms = np.asarray(old_times) * 1e3
    k = len(old_ms)
    old_width = max(1, min(20, k // 5))
    old_last = _window(old_ms, k, old_width)
    new_at_k = _window(ms, k, old_width)
    return {
        "records": n,
        "target_answered": answered_target,
        "answered": st.history,
        "rank": st.rank,
        "atoms": st.atoms,
        "basis_entries": st.entries,
        "engine": type(auditor._scopes["org:rand"]).__name__,
        "time_budget_s": budget_s,
        "median_ms": float(np.median(ms)),
        "last_decile_median_ms": float(np.median(last)),
        "last_decile_mean_ms": float(np.mean(last)),
        "last_decile_p99_ms": float(np.percentile(last, 99)),
        "max_ms": float(ms.max()),
        "total_s": float(ms.sum() / 1e3),
        "work_cap_hit": bool(capped),
        "capped_denial_median_ms": float(np.median(capped) * 1e3) if capped else None,
        "state_json_bytes": len(json.dumps(auditor.to_state())),
        "curve": (hist, ms.tolist()),
        "old_curve": (old_hist, old_ms.tolist()),
        "old": {
            "engine": "sparse (dense_switch_entries=None)",
            "time_budget_s": old_budget_s,
            "answered": k,
            "work_cap_hit": bool(old_capped),
            "basis_entries": old_auditor.status()["org:rand"].entries,
            "at_answered": k,
            "old_median_ms": float(np.median(old_last)) if k else None,
            "new_median_ms": float(np.median(new_at_k)) if k else None,
            "new_mean_ms": float(np.mean(new_at_k)) if k else None,
            "window": old_width,
        },
    }


# ----------------------------------------------------------------------------- report


def _plot(path: str, benign: dict[str, Any], rand: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for (h, ms), label in (
        (benign["curve"], f"analytics, N={benign['records']:,}"),
        (rand["curve"], f"random id sets, N={rand['records']:,} (dense engine)"),
        (rand["old_curve"], f"random id sets, N={rand['records']:,} (sparse engine, same queries)"),
    ):
        ax.scatter(h, ms, s=3, alpha=0.4, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("answered SUM queries in the scope")
    ax.set_ylabel("audit cost per query (ms)")
    ax.set_title("Reconstruction auditor: per-query cost as history grows")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    att, ben, rnd = result["attacks"], result["benign"], result["random_subsets"]
    t = Table(title="Reconstruction auditing: attacks stopped vs benign queries denied")
    t.add_column("defence")
    for a in ATTACKS:
        t.add_column(f"stopped: {a}", justify="right")
    t.add_column("benign denied", justify="right")
    for d in DEFENCES:
        name = {
            "auditor": "auditor",
            "size": f"size k>={K_SIZE}",
            "overlap": f"overlap r<={R_OVERLAP}",
        }[d]
        t.add_row(
            name,
            *(f"{att['stopped_share'][d][a]:.0%}" for a in ATTACKS),
            f"{ben['denied_share'][d]:.1%}",
        )
    c = Console()
    c.print(t)
    c.print(f"unaudited attack instances that disclose: {att['unaudited_instances_disclosing']}")
    t2 = Table(title="Auditor cost per query")
    for col in (
        "workload",
        "records",
        "answered",
        "rank/atoms",
        "median ms",
        "p99 / last ms",
        "state",
    ):
        t2.add_column(col, justify="right")
    t2.add_row(
        "analytics",
        f"{ben['records']:,}",
        f"{ben['auditor_answered']:,}",
        f"{ben['auditor_rank']}/{ben['auditor_atoms']}",
        f"{ben['median_ms']:.3f}",
        f"{ben['p99_ms']:.2f}",
        f"{ben['state_json_bytes'] / 1e6:.1f} MB",
    )
    t2.add_row(
        "random id sets",
        f"{rnd['records']:,}",
        f"{rnd['answered']:,}",
        f"{rnd['rank']}/{rnd['atoms']}",
        f"{rnd['median_ms']:.1f}",
        f"{rnd['last_decile_median_ms']:.1f} (mean {rnd['last_decile_mean_ms']:.1f})",
        f"{rnd['state_json_bytes'] / 1e6:.1f} MB",
    )
    c.print(t2)
    old = rnd["old"]
    if old["answered"]:
        c.print(
            f"random id sets, same run, at {old['at_answered']} answered (median of the last "
            f"{old['window']}): sparse engine {old['old_median_ms']:.1f} ms, dense engine "
            f"{old['new_median_ms']:.1f} ms (mean {old['new_mean_ms']:.1f} ms); the sparse engine "
            f"stopped at {old['answered']} answered"
            + (" (work cap)" if old["work_cap_hit"] else f" (time budget {old['time_budget_s']:.0f} s)")
        )
    if rnd["work_cap_hit"]:
        c.print(
            f"random id sets: work cap ({rnd['basis_entries']:,} basis entries) reached after "
            f"{rnd['answered']} answered; further rank-increasing queries denied "
            f"(AUDIT_CAPACITY) in {rnd['capped_denial_median_ms']:.2f} ms"
        )
    for k, v in result["targets"].items():
        c.print(f"target {k}: {'met' if v['met'] else 'NOT met'} ({v['measured']})")


def run(
    *,
    quick: bool = False,
    json_output: bool = False,
    plot_path: str | None = None,
    seed: int = 2026,
) -> dict[str, Any]:
    """Run every workload; print a Rich table (or JSON) and return the figures.

    Args:
        quick: small sizes (for tests and smoke runs, a few seconds).
        json_output: print JSON instead of tables.
        plot_path: where to write the cost-vs-history PNG (None: no plot).
        seed: workload seed.

    Returns:
        ``{"attacks": ..., "benign": ..., "random_subsets": ..., "targets": ...}``
        (curves are dropped from the returned copy's JSON printout).
    """
    if quick:
        att = run_attacks(300, 3, seed)
        ben = run_benign(20_000, 1_000, seed)
        rnd = run_random_subsets(1_000, 200, seed, budget_s=20.0, old_budget_s=5.0)
    else:
        att = run_attacks(1_000, 10, seed)
        ben = run_benign(100_000, 10_000, seed)
        rnd = run_random_subsets(10_000, 2_000, seed, budget_s=300.0, old_budget_s=120.0)
    targets = {
        "analytics median < 1 ms": {
            "met": ben["median_ms"] < 1.0,
            "measured": f"{ben['median_ms']:.3f} ms",
        },
        "analytics p99 < 50 ms": {
            "met": ben["p99_ms"] < 50.0,
            "measured": f"{ben['p99_ms']:.2f} ms",
        },
        "random id sets <= 20 ms per decision at target history": {
            "met": rnd["answered"] >= rnd["target_answered"] and rnd["last_decile_median_ms"] <= 20,
            "measured": f"median {rnd['last_decile_median_ms']:.1f} ms, mean "
            f"{rnd['last_decile_mean_ms']:.1f} ms, p99 {rnd['last_decile_p99_ms']:.0f} ms over answered "
            f"{rnd['answered'] - max(1, rnd['target_answered'] // 10) + 1}..{rnd['answered']} "
            f"(target {rnd['target_answered']})",
        },
    }
    result = {"attacks": att, "benign": ben, "random_subsets": rnd, "targets": targets}
    if plot_path:
        _plot(plot_path, ben, rnd)
        result["plot"] = plot_path
    if json_output:
        slim = json.loads(json.dumps(result, default=str))
        slim["benign"].pop("curve", None)
        slim["random_subsets"].pop("curve", None)
        slim["random_subsets"].pop("old_curve", None)
        print(json.dumps(slim, indent=2, sort_keys=True))
    else:
        _table(result)
    return result


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--plot", default=None)
    a = ap.parse_args()
    run(quick=a.quick, json_output=a.json, plot_path=a.plot)
