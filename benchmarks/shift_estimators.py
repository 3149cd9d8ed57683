"""The pairwise position shift: the old run-wide mean of clipped per-pair shifts vs the censored
maximum-likelihood fit now used (issue 23 item 8), on saved leaderboard rows (docs/judges.md).

    python benchmarks/shift_estimators.py SAVED_ROWS.json [--simulated]

SAVED_ROWS.json: the rows benchmarks/judge_leaderboard.py saved (with their per-pair outcomes);
--simulated adds a judge with a true shift of 6 whose verdict probabilities saturate.
"""

import json
import math
import random
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import judge_leaderboard as lb  # noqa: E402

from rlaif.judges.debias import agree, debiased, estimate_beta, logit, pair_shift  # noqa: E402
from rlaif.judges.evaluate import agreement  # noqa: E402


def old_beta(ab, ba):
    if not ab:
        return 0.0
    return sum((logit(x) + logit(1 - y)) / 2 for x, y in zip(ab, ba)) / len(ab)


def held_out(outcomes, estimate):
    halves = outcomes[0::2], outcomes[1::2]
    kept, chosen = [], []
    for fit, score in (halves, halves[::-1]):
        beta = estimate([o["p_a_ab"] for o in fit], [o["p_a_ba"] for o in fit])
        for o in score:
            q = debiased(o["p_a_ab"], o["p_a_ba"], beta)
            kept.append(agree(*q))
            p = sum(q) / 2
            chosen.append(p if o["chosen_is_a"] else 1 - p)
    return agreement(chosen), sum(kept) / len(kept)


def figures(outcomes):
    ab, ba = [o["p_a_ab"] for o in outcomes], [o["p_a_ba"] for o in outcomes]
    clipped = sum(pair_shift(x, y)[1] != 0 for x, y in zip(ab, ba))
    out = {"n": len(outcomes), "clipped pairs": clipped, "max confidence": max(max(x, 1 - x) for x in ab + ba)}
    for name, est in (("old", old_beta), ("new", estimate_beta)):
        b = est(ab, ba)
        a, c = lb.rule_figures(outcomes, b)
        ha, hc = held_out(outcomes, est)
        out[name] = (b, a, c, ha, hc)
    return out


def fmt(r):
    o, n = r["old"], r["new"]
    return f"{o[0]:+.3f} / {n[0]:+.3f} | {o[1]:.3f} / {n[1]:.3f} | {o[2]:.3f} / {n[2]:.3f} | {o[3]:.3f} / {n[3]:.3f} | {o[4]:.3f} / {n[4]:.3f}"


def simulated(shift=6.0, content_sd=7.0, n=200, seed=0):
    """The unit test's judge (tests/test_judge_pairwise.py): content logit d ~ N(0, 7), shift N(6, 0.5); truth: d > 0."""
    rng = random.Random(seed)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    outs = []
    for _ in range(n):
        d, b = rng.gauss(0, content_sd), rng.gauss(shift, 0.5)
        p_ab, p_ba = round(sig(d + b), 12), round(1 - sig(-d + b), 12)
        outs.append({"p_a_ab": p_ab, "p_a_ba": p_ba, "chosen_is_a": d > 0})
    return outs


def main(saved_path: str, with_simulated: bool) -> None:
    saved = json.loads(Path(saved_path).read_text())
    for _, row in sorted(saved.items()):
        if row["type"] != "pairwise" or not row["debias"]:
            continue
        r = figures(lb.outcomes_of(row))
        print(
            f"| {row['model']} | {'on' if row['cot'] else 'off'} | {row['set']} | {r['n']} | {r['clipped pairs']} | {r['max confidence']:.3f} | {fmt(r)} |"
        )
    if with_simulated:
        r = figures(simulated())
        print(
            f"| simulated (shift 6, saturated) | - | truth d > 0 | {r['n']} | {r['clipped pairs']} | {r['max confidence']:.3f} | {fmt(r)} |"
        )


if __name__ == "__main__":
    main(sys.argv[1], "--simulated" in sys.argv[2:])
