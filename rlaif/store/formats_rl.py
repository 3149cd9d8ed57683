"""Exports for RL frameworks other than TRL: OpenRLHF's preference data and verl's RL data.

- ``openrlhf-pairs``: one row per kept pair, the columns OpenRLHF's ``RewardDataset`` reads
  (``train_rm`` / ``train_dpo`` with ``--prompt_key prompt --chosen_key chosen --rejected_key rejected``):
  conversational style: ``prompt`` is the message list and ``chosen`` / ``rejected`` are one
  assistant message each, for ``--apply_chat_template`` (OpenRLHF renders ``prompt + chosen``);
  standard style: plain text (no ``--apply_chat_template``). ``margin`` (|2 p_chosen - 1|) is the
  column its margin loss reads; ``p_chosen`` (the soft label) and the ids come along.
- ``verl-rl``: one row per prompt in verl's RL Parquet layout (``data.train_files=...parquet``, as
  written by verl's ``examples/data_preprocess/full_hh_rlhf.py``): ``data_source``, ``prompt``
  (messages: verl's ``RLHFDataset`` applies the chat template itself, so this column is messages in
  both styles), ``ability`` ("alignment"), ``reward_model`` ``{style: "model", ground_truth}`` (the
  version's best response to the prompt, "" when none; a model reward does not read it) and
  ``extra_info`` ``{split, index, prompt_id, messages}``. verl does not hand the prompt to a custom
  reward function, so ``extra_info.messages`` carries it: `rlaif.training.reward_server.compute_score`
  sends it with the response to `rlaif serve-reward`.
"""

from __future__ import annotations

from pathlib import Path

from rlaif.store.rows import dpo_rows, prompt_rows, read_optional, sft_rows

RL_FORMATS = ("openrlhf-pairs", "verl-rl")
RL_SOURCES = {"openrlhf-pairs": ("pairs",), "verl-rl": ("prompts", "pairs")}
VERL_ABILITY = "alignment"
OPENRLHF_COLUMNS = ("prompt", "chosen", "rejected", "margin", "p_chosen", "prompt_id", "chosen_id", "rejected_id")


def openrlhf_pair_rows(pairs: list[dict], style: str) -> list[dict]:
    """OpenRLHF RewardDataset rows: prompt/chosen/rejected/margin plus the soft label and ids."""
    return [{key: row.get(key) for key in OPENRLHF_COLUMNS} for row in dpo_rows(pairs, style)]


def _best_responses(rankings: list[dict], pairs: list[dict]) -> dict[str, str]:
    """prompt_id -> the best response text (the sft export's choice)."""
    return {row["prompt_id"]: row["completion"][0]["content"] for row in sft_rows(rankings, pairs, "conversational")}


def verl_rl_rows(prompts: list[dict], pairs: list[dict], rankings: list[dict], data_source: str) -> list[dict]:
    """verl RL rows, one per prompt of the version (its prompt order)."""
    best = _best_responses(rankings, pairs)
    rows = []
    for index, row in enumerate(prompt_rows(prompts, pairs, "conversational")):
        messages = [{"role": m["role"], "content": m["content"]} for m in row["prompt"]]
        rows.append(
            {
                "data_source": data_source,
                "prompt": messages,
                "ability": VERL_ABILITY,
                "reward_model": {"style": "model", "ground_truth": best.get(row["prompt_id"], "")},
                "extra_info": {"split": "train", "index": index, "prompt_id": row["prompt_id"], "messages": messages},
            }
        )
    return rows


def rl_rows(store: str | Path, version_id: str, fmt: str, style: str) -> tuple[list[dict], str]:
    """(rows, the table they were built from) of one RL export format (see the module docstring)."""
    if fmt == "openrlhf-pairs":
        return openrlhf_pair_rows(read_optional(store, version_id, "pairs"), style), "pairs"
    prompts, pairs = read_optional(store, version_id, "prompts"), read_optional(store, version_id, "pairs")
    rankings = read_optional(store, version_id, "rankings")
    return verl_rl_rows(prompts, pairs, rankings, f"rlaif/{version_id}"), "prompts" if prompts else "pairs"
