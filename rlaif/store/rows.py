"""The rows of TRL's dataset formats, built from a version's tables (rlaif.store.formats says which
format reads which table; rlaif.store.formats_rl builds OpenRLHF's and verl's from these)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rlaif.store.versions import version_path

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")
STYLES = ("conversational", "standard")
ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


# ---------------------------------------------------------------- text rendering (standard style)


def render_prompt(messages: list[dict]) -> str:
    """A conversation as plain text for the standard style: turns are ``Role: content`` separated by
    a blank line, ending in ``Assistant:`` so that a completion (which starts with a space) follows.

    >>> render_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}])
    'System: Be brief.\\n\\nUser: Hi?\\n\\nAssistant:'
    """
    turns = [f"{ROLE_NAMES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages]
    return "\n\n".join([*turns, "Assistant:"])


def render_completion(text: str) -> str:
    """A response as the standard style's completion: one leading space after ``Assistant:``.

    >>> render_completion("Hello.")
    ' Hello.'
    """
    return " " + text


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _completion(text: str, style: str) -> Any:
    return _assistant(text) if style == "conversational" else render_completion(text)


def _prompt(messages: list[dict], style: str) -> Any:
    return messages if style == "conversational" else render_prompt(messages)


def _text_of(messages: list[dict]) -> str:
    """The text of a one-message completion as stored in `pairs` / `feedback`."""
    return "".join(m["content"] for m in messages)


# ---------------------------------------------------------------- tables


def read_optional(store: str | Path, version_id: str, table: str) -> list[dict]:
    """Rows of a table, or [] when this (older) version has no such table."""
    if not (version_path(store, version_id) / f"{table}.parquet").is_file():
        return []
    return pq.read_table(version_path(store, version_id) / f"{table}.parquet").to_pylist()


def _generation_id(row: dict) -> str:
    return row.get("id") or f"{row['prompt_id']}/{row['policy']}/{row['sample_index']}"


# ---------------------------------------------------------------- formats


def dpo_rows(pairs: list[dict], style: str) -> list[dict]:
    """Preference rows (dpo and rm): prompt/chosen/rejected first, then every provenance column."""
    rows = []
    for pair in pairs:
        row = {
            "prompt": _prompt(pair["prompt"], style),
            "chosen": _completion(_text_of(pair["chosen"]), style),
            "rejected": _completion(_text_of(pair["rejected"]), style),
        }
        row.update({key: value for key, value in pair.items() if key not in PREFERENCE_COLUMNS})
        rows.append(row)
    return rows


def kto_rows(feedback: list[dict], pairs: list[dict], style: str) -> list[dict]:
    """Unpaired rows: prompt/completion/label plus prompt_id, response_id, policy, score."""
    if feedback:
        return [
            {
                "prompt": _prompt(row["prompt"], style),
                "completion": _completion(_text_of(row["completion"]), style),
                "label": bool(row["label"]),
                "prompt_id": row["prompt_id"],
                "response_id": row["response_id"],
                "policy": row["policy"],
                "score": row.get("score"),
            }
            for row in feedback
        ]
    rows = []
    for pair in pairs:
        for side, label, score in (("chosen", True, pair["p_chosen"]), ("rejected", False, 1 - pair["p_chosen"])):
            rows.append(
                {
                    "prompt": _prompt(pair["prompt"], style),
                    "completion": _completion(_text_of(pair[side]), style),
                    "label": label,
                    "prompt_id": pair["prompt_id"],
                    "response_id": pair[f"{side}_id"],
                    "policy": pair[f"{side}_policy"],
                    "score": score,
                }
            )
    return rows


def _pair_scores(pairs: list[dict]) -> dict[str, dict[str, dict]]:
    """prompt_id -> response_id -> {p: [P(win) per kept pair], text, policy, prompt}."""
    found: dict[str, dict[str, dict]] = defaultdict(dict)
    for pair in pairs:
        for side, p in (("chosen", pair["p_chosen"]), ("rejected", 1 - pair["p_chosen"])):
            entry = found[pair["prompt_id"]].setdefault(
                pair[f"{side}_id"],
                {"p": [], "text": _text_of(pair[side]), "policy": pair[f"{side}_policy"], "prompt": pair["prompt"]},
            )
            entry["p"].append(p)
    return found


def best_of(candidates: dict[str, float]) -> str:
    """The id with the highest score; ties go to the smallest id (deterministic).

    >>> best_of({"p/b/1": 0.7, "p/a/0": 0.7, "p/c/2": 0.2})
    'p/a/0'
    """
    return min(candidates, key=lambda rid: (-candidates[rid], rid))


def sft_rows(rankings: list[dict], pairs: list[dict], style: str) -> list[dict]:
    """Best response per prompt from the kept pairs' judgments: prompt/completion plus prompt_id,
    response_id, policy, score (the ranking's score, or the mean P(win) over the kept pairs)."""
    ranked = [ranking for ranking in rankings if ranking.get("judge") != "pairwise"]
    return _sft_from_rankings(ranked, pairs, style) if ranked else _sft_from_pairs(pairs, style)


def _sft_from_rankings(rankings: list[dict], pairs: list[dict], style: str) -> list[dict]:
    """Per ranking, its rank-1 response that won a kept pair (the higher score, then the smaller id); none: no row."""
    winners: dict[str, set[str]] = defaultdict(set)
    for pair in pairs:
        winners[pair["prompt_id"]].add(pair["chosen_id"])
    rows = []
    for ranking in rankings:
        if ranking.get("error") or not ranking["response_ids"]:
            continue
        ids, top = ranking["response_ids"], min(ranking["ranks"])
        kept = [
            i for i, rank in enumerate(ranking["ranks"]) if rank == top and ids[i] in winners[ranking["prompt_id"]]
        ]
        if not kept:
            continue
        i = min(kept, key=lambda k: (-ranking["scores"][k], ids[k]))
        rows.append(
            _sft_row(
                ranking["prompt"],
                ranking["prompt_id"],
                ids[i],
                ranking["responses"][i],
                ranking["policies"][i],
                ranking["scores"][i],
                style,
            )
        )
    return rows


def _sft_from_pairs(pairs: list[dict], style: str) -> list[dict]:
    """Per prompt, the response with the highest mean P(win) over its kept pairs."""
    rows = []
    for prompt_id, responses in _pair_scores(pairs).items():
        means = {rid: sum(entry["p"]) / len(entry["p"]) for rid, entry in responses.items()}
        best = best_of(means)
        entry = responses[best]
        rows.append(_sft_row(entry["prompt"], prompt_id, best, entry["text"], entry["policy"], means[best], style))
    return rows


def sft_selection(store: str | Path, version_id: str, n_rows: int) -> dict[str, int]:
    """How the SFT rows were chosen, for the card: {"judged": prompts with a judgment, "rows": n_rows,
    "left_out": judged prompts without a kept pair (every judgment of theirs was dropped)}."""
    tables = {name: read_optional(store, version_id, name) for name in ("rankings", "judgments", "pairs")}
    judged = {r["prompt_id"] for r in tables["rankings"] if not r.get("error") and r["response_ids"]}
    judged |= {j["prompt_id"] for j in tables["judgments"] if not j.get("error") and j.get("p_a") is not None}
    judged |= {p["prompt_id"] for p in tables["pairs"]}
    return {"judged": len(judged), "rows": n_rows, "left_out": max(len(judged) - n_rows, 0)}


def _sft_row(
    prompt: list[dict], prompt_id: str, response_id: str, text: str, policy: str, score: float | None, style: str
) -> dict:
    return {
        "prompt": _prompt(prompt, style),
        "completion": _completion(text, style),
        "prompt_id": prompt_id,
        "response_id": response_id,
        "policy": policy,
        "score": score,
    }


def prompt_rows(prompts: list[dict], pairs: list[dict], style: str) -> list[dict]:
    """Prompt-only rows (GRPO / RLOO): prompt plus prompt_id, in the version's prompt order."""
    source = [(p["id"], p["messages"]) for p in prompts] or [(p["prompt_id"], p["prompt"]) for p in pairs]
    seen: dict[str, list[dict]] = {}
    for prompt_id, messages in source:
        seen.setdefault(prompt_id, messages)
    return [{"prompt": _prompt(messages, style), "prompt_id": prompt_id} for prompt_id, messages in seen.items()]


def competition_ranks(scores: list[float]) -> list[int]:
    """Ranks with 1 = highest score; equal scores share the best rank of their group ("1224").

    >>> competition_ranks([0.2, 0.9, 0.5, 0.9])
    [4, 1, 3, 1]
    """
    rounded = [round(s, 9) for s in scores]
    return [1 + sum(other > mine for other in rounded) for mine in rounded]


def listwise_rows(rankings: list[dict], tables: dict[str, list[dict]], style: str) -> list[dict]:
    """One row per prompt: every response with its score and rank; from `rankings`, else built
    from the pairwise judgments (score = mean debiased P(win) over the response's judgments)."""
    source = rankings or rankings_from_judgments(
        tables["judgments"], tables["generations"], tables["prompts"], tables["pairs"]
    )
    source = [row for row in source if not row.get("error") and row["response_ids"]]
    return [
        {
            "prompt": _prompt(row["prompt"], style),
            "responses": [_completion(text, style) for text in row["responses"]],
            "response_ids": list(row["response_ids"]),
            "policies": list(row["policies"]),
            "scores": list(row["scores"]),
            "ranks": list(row["ranks"]),
            "prompt_id": row["prompt_id"],
            "judge": row["judge"],
            "agreement": row.get("agreement"),
        }
        for row in source
    ]


def rankings_from_judgments(
    judgments: list[dict], generations: list[dict], prompts: list[dict], pairs: list[dict]
) -> list[dict]:
    """Rankings-table rows from pairwise judgments; failed judgments are left out, and so are
    prompts with fewer than two scored responses (no ranking) or whose messages are unknown."""
    wins: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for j in judgments:
        if j.get("error") or j.get("p_a") is None:
            continue
        wins[j["prompt_id"]][j["a_id"]].append(j["p_a"])
        wins[j["prompt_id"]][j["b_id"]].append(1 - j["p_a"])
    by_id = {_generation_id(g): g for g in generations}
    messages = {p["prompt_id"]: p["prompt"] for p in pairs} | {p["id"]: p["messages"] for p in prompts}
    rows = []
    for prompt_id, responses in wins.items():
        ids = sorted(rid for rid in responses if rid in by_id)
        if len(ids) < 2 or prompt_id not in messages:
            continue
        scores = [sum(responses[rid]) / len(responses[rid]) for rid in ids]
        rows.append(
            {
                "prompt_id": prompt_id,
                "prompt": messages[prompt_id],
                "response_ids": ids,
                "responses": [by_id[rid]["text"] for rid in ids],
                "policies": [by_id[rid]["policy"] for rid in ids],
                "scores": scores,
                "ranks": competition_ranks(scores),
                "judge": "pairwise",
                "agreement": None,
            }
        )
    return rows
