"""Judge leaderboard: the built-in judges on the three shared human-labelled sets (docs/judges.md).

For each cell of a plan in benchmarks/judges/grid.yaml (model x judge type x chain-of-thought x
set, first N rows), the judge is measured with `rlaif.judges.evaluate.evaluate_judge` (what
`rlaif eval-judge` runs): agreement with its 95% interval, raw and debiased order consistency,
length preference, kappa, ECE, the "longer" / "shorter" baselines. Every cell is evaluated with
`debias: true` and then `debias: false`; the second makes no model call (the same both-order
calls, from the store's request cache). The jury's members make the calls of the single-judge
rows, so a jury costs nothing once its members were measured on the same rows.

    .venv/bin/python benchmarks/judge_leaderboard.py                  # the CPU plan (row limits), print
    .venv/bin/python benchmarks/judge_leaderboard.py --write          # ... and refresh docs/judges.md
    .venv/bin/python benchmarks/judge_leaderboard.py --models smollm2-135m   # one model's cells only
    .venv/bin/python benchmarks/judge_leaderboard.py --full --write   # a GPU: every cell, every row
    .venv/bin/python benchmarks/judge_leaderboard.py --render --write # only re-render the saved rows

Rows are kept in STORE/evals/judge-leaderboard.json (merged across runs, so the plan can be run
piece by piece); a row re-measured from the cache keeps the wall time and device of the run that
paid its calls. A model that is not installed (`make judges`) is skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RLAIF_PROGRESS", "0")

import _common as common  # noqa: E402
import yaml  # noqa: E402

GRID = common.ROOT / "benchmarks" / "judges" / "grid.yaml"
DOC = common.ROOT / "docs" / "judges.md"
DATA = Path("/work/shared/data") if Path("/work/shared/data").is_dir() else common.ROOT.parent / "shared" / "data"
SECTION = "judge-leaderboard"
JURY = "jury"


def load_grid(path: Path = GRID) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def expand(plan: list[dict[str, Any]], models: list[str] | None = None) -> list[dict[str, Any]]:
    """The cells of a plan: one dict (model, type, cot, set, limit) per cell; `models` keeps only those.

    >>> [c["model"] + "/" + c["set"] for c in expand([{"models": ["m"], "types": ["pairwise"], "cot": [False], "sets": ["x", "y"], "limit": 5}])]
    ['m/x', 'm/y']
    >>> expand([{"jury": True, "sets": ["x"], "limit": None}])[0]["model"]
    'jury'
    """
    cells = []
    for entry in plan:
        names = [JURY] if entry.get("jury") else entry["models"]
        for model in names:
            if models and model not in models:
                continue
            for judge_type in entry.get("types", ["pairwise"]):
                for cot in entry.get("cot", [False]):
                    for name in entry["sets"]:
                        cells.append(
                            {"model": model, "type": judge_type, "cot": cot, "set": name, "limit": entry.get("limit")}
                        )
    return cells


def base_judge(grid: dict[str, Any], model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the base recipe's data, its judge section) for a built-in model."""
    from rlaif.config.recipe_checks import read_recipe_yaml

    data = read_recipe_yaml(common.ROOT / grid["models"][model])
    return data, dict(data["judge"])


def judge_section(grid: dict[str, Any], cell: dict[str, Any], debias: bool, threads: int | None) -> tuple[dict, dict]:
    """(base recipe data, the judge section of one row): the base judge with the cell's settings."""
    if cell["model"] == JURY:
        return jury_section(grid, debias, threads)
    data, judge = base_judge(grid, cell["model"])
    if cell["type"] != judge.get("type", "pairwise"):
        judge.pop("template", None)  # another type: its own default template (prompts/<type>_judge.j2)
    judge.update(type=cell["type"], **grid["types"][cell["type"]], debias=debias, chain_of_thought=cell["cot"])
    if threads:
        judge["threads"] = threads  # not part of the cache key (nor is batch_size)
    return data, judge


def jury_section(grid: dict[str, Any], debias: bool, threads: int | None) -> tuple[dict, dict]:
    """A pairwise jury whose members are the models' base judges (same engine settings and template)."""
    names = grid["jury"]["members"]
    data, first = base_judge(grid, names[0])
    members = []
    for name in names:
        judge = base_judge(grid, name)[1]
        member = {key: judge[key] for key in ("backend", "model", "dtype", "batch_size", "template") if key in judge}
        members.append({**member, "name": name, **({"threads": threads} if threads else {})})
    judge = {**first, "debias": debias, "jury": members, "jury_aggregate": grid["jury"]["aggregate"]}
    return data, judge


def row_name(cell: dict[str, Any], debias: bool) -> str:
    """
    >>> row_name({"model": "smollm2-135m", "type": "pairwise", "cot": True}, False)
    'lb-smollm2-135m-pairwise-cot-nodebias'
    """
    return f"lb-{cell['model']}-{cell['type']}" + ("-cot" if cell["cot"] else "") + ("" if debias else "-nodebias")


def gold_path(grid: dict[str, Any], name: str) -> Path:
    return DATA / grid["sets"][name] / "pairs.jsonl"


def device(threads: int | None) -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({os.cpu_count()} cores shared, {threads or torch.get_num_threads()} torch thread{'s' if threads != 1 else ''})"


def measure(
    grid: dict[str, Any], cell: dict[str, Any], debias: bool, store: Path, threads: int | None
) -> dict[str, Any]:
    """One leaderboard row: `evaluate_judge` of the cell's recipe, with its conditions."""
    from rlaif.config.recipe import parse_recipe
    from rlaif.judges.evaluate import evaluate_judge
    from rlaif.pipeline.preflight import check_judge

    data, judge = judge_section(grid, cell, debias, threads)
    recipe = parse_recipe(
        {**data, "name": row_name(cell, debias), "judge": judge, "store": None}, f"{GRID} ({row_name(cell, debias)})"
    )
    check_judge(recipe, store)
    start = time.perf_counter()
    result = evaluate_judge(recipe, gold_path(grid, cell["set"]), store, cell["limit"], seed=0)
    wall = time.perf_counter() - start
    return {
        **cell,
        "debias": debias,
        "result": result,
        "wall_s": round(wall, 1),
        "device": device(threads),
        "date": common.today(),
        "load": common.load_average(),
    }


def key_of(row: dict[str, Any]) -> str:
    """
    >>> key_of({"model": "m", "type": "pairwise", "cot": False, "debias": True, "set": "x", "limit": 40})
    'm|pairwise|cot=False|debias=True|x|40'
    """
    return f"{row['model']}|{row['type']}|cot={row['cot']}|debias={row['debias']}|{row['set']}|{row['limit']}"


def merge(saved: dict[str, dict], row: dict[str, Any]) -> None:
    """Keep the new figures; when the new row made no live call, keep the conditions of the run that did."""
    old = saved.get(key_of(row))
    if old and row["result"]["calls"]["live"] == 0 and old["result"]["calls"]["live"] > 0:
        row = {
            **row,
            **{k: old[k] for k in ("wall_s", "device", "date", "load")},
            "paid_calls": old["result"]["calls"],
        }
    saved[key_of(row)] = row


def save_row(results: Path, row: dict[str, Any]) -> dict[str, dict]:
    """Merge one row into the saved rows and write them back, under a lock: plans run side by side."""
    import fcntl

    results.parent.mkdir(parents=True, exist_ok=True)
    with open(results.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = json.loads(results.read_text()) if results.is_file() else {}
        merge(saved, row)
        tmp = results.with_suffix(".tmp")
        tmp.write_text(json.dumps(saved, indent=1))
        tmp.replace(results)
    return saved


def run_plan(
    grid: dict[str, Any], cells: list[dict[str, Any]], store: Path, results: Path, threads: int | None
) -> dict[str, dict]:
    from rlaif.core.errors import RlaifError

    saved = json.loads(results.read_text()) if results.is_file() else {}
    for cell in cells:
        for debias in (
            (True,) if cell["type"] == "pointwise" else (True, False)
        ):  # the second: the same calls, from the cache
            try:
                row = measure(grid, cell, debias, store, threads)
            except RlaifError as exc:
                print(f"skipped {key_of({**cell, 'debias': debias})}: {exc}")
                break
            saved = save_row(results, row)
            r = row["result"]
            print(
                f"{key_of(row)}: agreement {r['agreement']} consistency {r['position_consistency']}/{r['position_consistency_debiased']} calls {r['calls']} {row['wall_s']} s",
                flush=True,
            )
    return saved


# ---- analysis of the saved rows (item 3 of issue 15): from the rows' per-row outcomes, no model call


def f2(x: float | None) -> str:
    """
    >>> f2(0.6666), f2(None)
    ('0.67', '-')
    """
    return "-" if x is None else f"{x:.2f}"


def outcomes_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-row outcomes `evaluate_judge` saved for a leaderboard row (judged rows only)."""
    path = Path(row["result"]["path"])
    if not path.is_file():
        return []
    return [o for o in json.loads(path.read_text())["outcomes"] if o["error"] is None]


def rule_figures(outcomes: list[dict[str, Any]], beta: float | None) -> tuple[float | None, float | None]:
    """(agreement, order consistency) of both-order soft labels debiased by `beta` (None: per pair,
    i.e. the two orders' logits averaged, consistent by construction), with the library's functions."""
    from rlaif.judges.debias import agree, debiased, logit, sigmoid
    from rlaif.judges.evaluate import agreement

    chosen, consistent = [], []
    for o in outcomes:
        ab, ba = o["p_a_ab"], o["p_a_ba"]
        if beta is None:
            p_a, same = sigmoid((logit(ab) + logit(ba)) / 2), True
        else:
            q_ab, q_ba = debiased(ab, ba, beta)
            p_a, same = (q_ab + q_ba) / 2, agree(q_ab, q_ba)
        chosen.append(p_a if o["chosen_is_a"] else 1 - p_a)
        consistent.append(float(same))
    return agreement(chosen), (sum(consistent) / len(consistent) if consistent else None)


def pair_shifts(p_a_ab: list[float], p_a_ba: list[float]) -> list[float]:
    """Each pair's own position shift (the terms whose mean is `estimate_beta`).

    >>> [round(x, 3) for x in pair_shifts([0.8, 0.7], [0.2, 0.6])]
    [1.386, 0.221]
    """
    from rlaif.judges.debias import logit

    return [(logit(ab) + logit(1 - ba)) / 2 for ab, ba in zip(p_a_ab, p_a_ba)]


def shrunk_beta(p_a_ab: list[float], p_a_ba: list[float]) -> float:
    """The run-wide mean shift shrunk toward 0 by its own noise (positive-part James-Stein):
    mean * max(0, 1 - se^2 / mean^2), se the standard error of the mean of the per-pair shifts.

    >>> round(shrunk_beta([0.8, 0.8, 0.8], [0.2, 0.2, 0.2]), 3)  # the same shift every pair: kept
    1.386
    >>> shrunk_beta([0.9, 0.1], [0.9, 0.9])  # two pairs pulling opposite ways: noise, 0
    0.0
    """
    shifts = pair_shifts(p_a_ab, p_a_ba)
    n = len(shifts)
    if n < 2:
        return 0.0
    mean = sum(shifts) / n
    se2 = sum((s - mean) ** 2 for s in shifts) / (n - 1) / n
    factor = 1 - se2 / mean**2 if mean else 0.0
    return mean * factor if factor > 0 else 0.0


def median_beta(p_a_ab: list[float], p_a_ba: list[float]) -> float:
    """The median of the per-pair shifts (a run-wide shift that a tail of strongly biased pairs does not pull).

    >>> round(median_beta([0.8, 0.7, 0.5], [0.2, 0.6, 0.5]), 3)
    0.221
    """
    shifts = sorted(pair_shifts(p_a_ab, p_a_ba))
    mid = len(shifts) // 2
    return shifts[mid] if len(shifts) % 2 else (shifts[mid - 1] + shifts[mid]) / 2


def held_out_consistency(outcomes: list[dict[str, Any]], estimate) -> float | None:
    """Order consistency when each half of the rows (even, odd) is debiased with the shift
    `estimate(p_a_ab, p_a_ba)` finds on the other half: a rule is never scored on the pairs it was estimated from.

    >>> rows = [{"p_a_ab": 0.9, "p_a_ba": 0.3}, {"p_a_ab": 0.85, "p_a_ba": 0.3}]  # both favour the first shown
    >>> held_out_consistency(rows, lambda ab, ba: 0.0), held_out_consistency(rows, median_beta)
    (0.0, 1.0)
    """
    from rlaif.judges.debias import agree, debiased

    halves = outcomes[0::2], outcomes[1::2]
    if not halves[0] or not halves[1]:
        return None
    kept = []
    for fit, score in (halves, halves[::-1]):
        beta = estimate([o["p_a_ab"] for o in fit], [o["p_a_ba"] for o in fit])
        kept += [agree(*debiased(o["p_a_ab"], o["p_a_ba"], beta)) for o in score]
    return sum(kept) / len(kept)


def debias_rules(outcomes: list[dict[str, Any]]) -> dict[str, tuple[float, float | None, float | None]]:
    """rule -> (beta, agreement, consistency) for: off, the run-wide mean (rlaif's default), the
    median of the per-pair shifts, the mean shrunk by its own noise, per pair."""
    from rlaif.judges.debias import estimate_beta

    ab, ba = [o["p_a_ab"] for o in outcomes], [o["p_a_ba"] for o in outcomes]
    rules = {
        "off": 0.0,
        "run-wide mean": estimate_beta(ab, ba),
        "median": median_beta(ab, ba),
        "shrunk mean": shrunk_beta(ab, ba),
    }
    table = {name: (beta, *rule_figures(outcomes, beta)) for name, beta in rules.items()}
    table["per pair (logit mean)"] = (float("nan"), *rule_figures(outcomes, None))
    return table


def flips(outcomes: list[dict[str, Any]], beta: float) -> tuple[int, int]:
    """(pairs the shift makes order-consistent, consistent pairs it breaks).

    >>> flips([{"p_a_ab": 0.9, "p_a_ba": 0.4}, {"p_a_ab": 0.55, "p_a_ba": 0.6}], 0.5)
    (1, 1)
    """
    from rlaif.judges.debias import agree, debiased

    fixed = broken = 0
    for o in outcomes:
        before, after = agree(o["p_a_ab"], o["p_a_ba"]), agree(*debiased(o["p_a_ab"], o["p_a_ba"], beta))
        fixed += after and not before
        broken += before and not after
    return fixed, broken


def length_split(outcomes: list[dict[str, Any]]) -> tuple[float | None, float | None, int, int]:
    """(P(judge picks the longer | humans chose the longer), same | humans chose the shorter, n of each)."""
    from rlaif.judges.stats import pick_score

    by_human: dict[float, list[float]] = {1.0: [], 0.0: []}
    for o in outcomes:
        side = o["chosen_longer"]
        if side in by_human:
            picked_chosen = pick_score(o["p_chosen"])
            by_human[side].append(picked_chosen if side == 1.0 else 1 - picked_chosen)
    share = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return share(by_human[1.0]), share(by_human[0.0]), len(by_human[1.0]), len(by_human[0.0])


def leaderboard_table(rows: list[dict[str, Any]]) -> list[str]:
    head = (
        "| judge | type | CoT | debias | set | rows | agreement (95% CI) | longer / shorter | kappa | consistency raw / debiased "
        "| prefers longer | ECE | failed | device | wall s | calls live / cached |"
    )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    order = sorted(
        rows,
        key=lambda r: (r["set"], -(r["result"]["agreement"] or 0), r["model"], r["type"], r["cot"], not r["debias"]),
    )
    for r in order:
        q, ci = r["result"], r["result"]["agreement_ci95"] or [None, None]
        calls = r.get("paid_calls") or q["calls"]
        cached = "" if "paid_calls" not in r else " (cached now)"
        wall = r["wall_s"] if calls["live"] else "cached"
        consistency = (
            f"{f2(q['position_consistency'])} / {f2(q['position_consistency_debiased'])}"
            if r["type"] != "pointwise"
            else "n/a (one response)"
        )
        if not r["debias"]:
            wall, calls, cached = "same calls", {"live": 0, "cached": q["calls"]["cached"]}, ""
        lines.append(
            f"| {r['model']} | {r['type']} | {'on' if r['cot'] else 'off'} | {'n/a' if r['type'] == 'pointwise' else 'on' if r['debias'] else 'off'} | {r['set']} "
            f"| {q['n']}/{q['gold']['rows']} | {f2(q['agreement'])} ({f2(ci[0])}-{f2(ci[1])}) | {f2(q['baseline_longer'])} / {f2(q['baseline_shorter'])} "
            f"| {f2(q['kappa'])} | {consistency} | {f2(q['prefers_longer'])} "
            f"| {f2(q['ece'])} | {q['failures']} | {r['device']} | {wall} | {calls['live']} / {calls['cached']}{cached} |"
        )
    return lines


def analysis_tables(rows: list[dict[str, Any]]) -> list[str]:
    """Debiasing rules and the length split, per pairwise single-judge row (debias on)."""
    from rlaif.judges.debias import estimate_beta

    lines = [
        "| judge | CoT | set | rows | "
        + " | ".join(
            f"{name}: beta, agreement, consistency" for name in ("off", "run-wide mean", "median", "shrunk mean")
        )
        + " | run-wide mean: pairs made consistent / broken | per pair: agreement | held out: mean, median consistency |",
        "|" + " --- |" * 11,
    ]
    length = [
        "| judge | type | CoT | set | humans chose the longer | judge picks the longer | ... when humans chose the longer | ... when humans chose the shorter |",
        "|" + " --- |" * 8,
    ]
    for r in sorted(rows, key=lambda r: (r["set"], r["model"], r["type"], r["cot"])):
        outcomes = outcomes_of(r)
        if not r["debias"] or not outcomes:
            continue
        q = r["result"]
        if r["type"] == "pairwise" and r["model"] != JURY:
            table = debias_rules(outcomes)
            cells = [
                f"{table[k][0]:+.2f}, {f2(table[k][1])}, {f2(table[k][2])}"
                for k in ("off", "run-wide mean", "median", "shrunk mean")
            ]
            fixed, broken = flips(outcomes, table["run-wide mean"][0])
            lines.append(
                f"| {r['model']} | {'on' if r['cot'] else 'off'} | {r['set']} | {q['n']} | "
                + " | ".join(cells)
                + f" | {fixed} / {broken} | {f2(table['per pair (logit mean)'][1])} "
                f"| {f2(held_out_consistency(outcomes, estimate_beta))}, {f2(held_out_consistency(outcomes, median_beta))} |"
            )
        when_longer, when_shorter, n_l, n_s = length_split(outcomes)
        length.append(
            f"| {r['model']} | {r['type']} | {'on' if r['cot'] else 'off'} | {r['set']} | {f2(q['baseline_longer'])} | {f2(q['prefers_longer'])} "
            f"| {f2(when_longer)} (n {n_l}) | {f2(when_shorter)} (n {n_s}) |"
        )
    return [
        "Position debiasing rules on the same calls (this script's rules over rlaif.judges.debias; a row's beta, agreement and order consistency "
        'after the shift; "per pair" averages the two orders\' logits, consistent by construction; "held out": each half of the rows (even, odd) '
        "debiased with the shift estimated on the other half):",
        "",
        *lines,
        "",
        "Where the length preference comes from (a judge that reads content picks the longer mostly when humans did):",
        "",
        *length,
    ]


def section(rows: list[dict[str, Any]], grid: dict[str, Any], command: str, machine: str) -> str:
    """The leaderboard section of docs/judges.md, from the saved rows."""
    loads = [
        float(r["load"].split()[0])
        for r in rows
        if r.get("load") and (r.get("paid_calls") or r["result"]["calls"]["live"])
    ]
    load = (
        f"1-minute load {min(loads):.1f}-{max(loads):.1f} while the rows that made calls ran"
        if loads
        else "load: see the text"
    )
    return "\n".join(
        [
            f"Generated by `{command}` (benchmarks/judge_leaderboard.py, grid benchmarks/judges/grid.yaml) on {common.today()}; "
            f"machine: {machine.split(', load average')[0]}, {load}. Rows: the first N rows of each set (`rows` = judged / read); every row's judge is "
            "its model's base recipe judge (recipes/demo.yaml, recipes/judge-qwen*.yaml) with the row's type, debias and "
            "chain-of-thought. Debias off/on share their calls (`same calls`); `cached now`: calls an earlier run of this "
            "script paid (its wall time and device are shown); `cached`: calls an `rlaif eval-judge` run paid before (see the "
            "text for its time). Sorted by set, then agreement.",
            "",
            *leaderboard_table(rows),
            "",
            *analysis_tables(rows),
        ]
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"refresh the {SECTION} section of docs/judges.md")
    parser.add_argument("--full", action="store_true", help="the GPU plan: every cell, every row")
    parser.add_argument("--models", nargs="*", help="only these models (and `jury`)")
    parser.add_argument("--sets", nargs="*", help="only these sets")
    parser.add_argument("--types", nargs="*", help="only these judge types")
    parser.add_argument("--no-cot", action="store_true", help="leave out the chain-of-thought cells")
    parser.add_argument("--only-cot", action="store_true", help="only the chain-of-thought cells")
    parser.add_argument("--limit", type=int, help="override every cell's row limit (a smoke run)")
    parser.add_argument("--render", action="store_true", help="measure nothing; render the saved rows")
    parser.add_argument("--store", help="store (default: as the CLI finds it: $RLAIF_STORE, else data/store)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of every judge (default: 1 on CPU, torch's own on a GPU)",
    )
    return parser.parse_args()


def main() -> None:
    from rlaif.config.settings import store_path

    args = parse_args()
    grid = load_grid()
    store = Path(store_path(None, args.store))
    results = store / "evals" / "judge-leaderboard.json"
    plan = "full" if args.full else "cpu"
    cells = [
        {**c, "limit": args.limit or c["limit"]}
        for c in expand(grid["plans"][plan], args.models)
        if (not args.sets or c["set"] in args.sets)
        and (not args.types or c["type"] in args.types)
        and not (args.no_cot and c["cot"])
        and not (args.only_cot and not c["cot"])
    ]
    if args.render:
        if not results.is_file():
            raise SystemExit(f"no saved rows in {results}: run without --render first (or pass --store)")
        saved = json.loads(results.read_text())
    else:
        import torch

        threads = args.threads or (None if torch.cuda.is_available() else 1)
        saved = run_plan(grid, cells, store, results, threads)
    body = section(list(saved.values()), grid, common.command_line(), common.machine())
    if args.write:
        text = DOC.read_text(encoding="utf-8")
        DOC.write_text(common.replace_section(text, SECTION, body), encoding="utf-8")
        print(f"wrote {DOC}")
    else:
        print(body)


if __name__ == "__main__":
    main()
