"""Converters from public human-preference sets to the gold schema (rlaif.core.gold).

`FORMATS` maps a `--gold-format` name to a function that turns ONE upstream row (a dict, as
`datasets` or a JSON Lines file gives it) into a gold row dict (`prompt`, `chosen`, `rejected`,
`source`, `index`), or into a `Skip` with a reason when the row holds no usable preference (a tie,
annotators without a majority, two conversations that do not share their prompt). Skips are
counted by reason by the caller, never dropped silently. A row of the wrong shape (a missing
column, a list where text belongs) is an `InputError` naming the file, the row and the column.

Every converted row whose two responses are the same text is skipped as `identical_responses`
(upstream sets have a few; in our own format such a row is an error). Which upstream columns each
converter reads is in its docstring and in docs/judges.md ("Measuring a judge on a public set").
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from rlaif.core.errors import InputError


class Skip(NamedTuple):
    """A row left out on purpose: `reason` is the key it is counted under, `detail` says why."""

    reason: str
    detail: str = ""


Converter = Callable[[Any, str, int], "dict[str, Any] | Skip"]

TIE, NO_MAJORITY, PROMPTS_DIFFER, IDENTICAL = "tie", "no_majority", "prompts_differ", "identical_responses"
TURN2_HISTORIES_DIFFER, NO_USER_TURN = "turn2_histories_differ", "no_user_turn"


def _columns(row: Any, path: str, line: int, fmt: str, *names: str) -> dict[str, Any]:
    """The row as a dict that has every column in `names` (else an error listing the columns it has)."""
    if not isinstance(row, dict):
        raise InputError(
            path, "each row must be a JSON object", line, fix=f"give the {UPSTREAM[fmt]} rows as JSON Lines"
        )
    for name in names:
        if name not in row:
            has = ", ".join(sorted(map(str, row))) or "none"
            raise InputError(
                path,
                f"missing column for --gold-format {fmt} (the row's columns: {has})",
                line,
                name,
                fix=f"--gold-format {fmt} reads {UPSTREAM[fmt]} rows; choose the format of this file ({', '.join(FORMATS)})",
            )
    return row


def _text(row: dict, name: str, path: str, line: int) -> str:
    value = row[name]
    if not isinstance(value, str):
        raise InputError(path, f"must be text (a string), got {type(value).__name__}", line, name)
    return value


def _pair(prompt: Any, chosen: str, rejected: str, source: str, index: Any = None) -> dict[str, Any] | Skip:
    """The gold row, or a skip when both responses are the same text (no preference to check)."""
    if chosen.strip() == rejected.strip():
        return Skip(IDENTICAL, "chosen and rejected are the same text")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "source": source, "index": index}


def rlaif_row(row: Any, path: str, line: int) -> Any:
    """Our own schema (rlaif.core.gold): the row as it is; `parse_gold_row` checks it."""
    return row


def _turns(row: dict, name: str, count: int, path: str, line: int) -> list[dict[str, str]]:
    """The first `count` messages of an MT-Bench conversation: user and assistant turns, alternating."""
    conversation = row[name]
    if not isinstance(conversation, list) or len(conversation) < count:
        raise InputError(
            path,
            f"must be a list of at least {count} messages ({count // 2} user and {count // 2} assistant turns) for turn {count // 2}",
            line,
            name,
        )
    for position, message in enumerate(conversation[:count]):
        role = "user" if position % 2 == 0 else "assistant"
        if not isinstance(message, dict) or message.get("role") != role or not isinstance(message.get("content"), str):
            raise InputError(
                path,
                f"message {position + 1} must be {{'role': '{role}', 'content': text}} (user and assistant alternate)",
                line,
                name,
            )
    return [{"role": m["role"], "content": m["content"]} for m in conversation[:count]]


def mt_bench_human(row: Any, path: str, line: int) -> dict[str, Any] | Skip:
    """lmsys/mt_bench_human_judgments: `winner` (model_a, model_b, or a tie: tie, tie (bothbad),
    tie (inconsistent)), `turn` (1 or 2), `conversation_a`/`conversation_b` (the whole two-turn
    conversation of each model as {role, content} messages); `question_id`, `judge` are kept as source.

    Turn 1: the prompt is the first user message, the responses each model's first reply. Turn 2:
    the prompt is user 1, assistant 1, user 2; since each model's conversation holds its own first
    reply, a turn-2 row is kept only when both first replies are the same text (else skipped as
    `turn2_histories_differ`: one prompt cannot show the judge both histories).
    """
    row = _columns(row, path, line, "mt-bench-human", "winner", "turn", "conversation_a", "conversation_b")
    winner, turn = row["winner"], row["turn"]
    if not isinstance(winner, str) or not (winner in ("model_a", "model_b") or winner.startswith("tie")):
        raise InputError(
            path, f"unknown winner {winner!r}", line, "winner", fix="expected model_a, model_b, tie or tie (bothbad)"
        )
    if isinstance(turn, bool) or turn not in (1, 2):
        raise InputError(path, f"unknown turn {turn!r}", line, "turn", fix="MT-Bench turns are 1 or 2")
    turn = int(turn)
    a = _turns(row, "conversation_a", 2 * turn, path, line)
    b = _turns(row, "conversation_b", 2 * turn, path, line)
    if winner.startswith("tie"):
        return Skip(TIE, f"winner {winner!r}")
    if [m["content"] for m in a[::2]] != [m["content"] for m in b[::2]]:
        return Skip(PROMPTS_DIFFER, "the user turns of conversation_a and conversation_b differ")
    if turn == 2 and a[1]["content"] != b[1]["content"]:
        return Skip(TURN2_HISTORIES_DIFFER, "turn 2 after two different first replies")
    chosen, rejected = (a, b) if winner == "model_a" else (b, a)
    source = f"mt-bench-human q{row.get('question_id')} turn {turn} {row.get('judge', '')}".strip()
    return _pair(a[:-1], chosen[-1]["content"], rejected[-1]["content"], source, row.get("question_id"))


def _blank(value: Any) -> bool:
    """PandaLM's `input` is NaN in its JSON file when a task has none (null or "" once converted)."""
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _response(row: dict, name: str, path: str, line: int) -> str:
    """A PandaLM response: text; six upstream answers are the JSON boolean true, read as "True"."""
    value = row[name]
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int)) or (isinstance(value, float) and not math.isnan(value)):
        return str(value)
    raise InputError(path, f"must be the response text, got {type(value).__name__}", line, name)


def pandalm(row: Any, path: str, line: int) -> dict[str, Any] | Skip:
    """WeOpenML/PandaLM test set (data/testset-v1.json, one object per line): `instruction`,
    `input` (NaN, null or "" when none), `response1`, `response2`, `annotator1..3` (0 tie, 1 or 2:
    the better response). Kept when at least 2 of the 3 agree on 1 or 2 (the majority is `chosen`);
    else `tie` (at least 2 say 0) or `no_majority`. Prompt: instruction, plus a blank line and the
    input when there is one."""
    votes = ("annotator1", "annotator2", "annotator3")
    row = _columns(row, path, line, "pandalm", "instruction", "response1", "response2", *votes)
    instruction = _text(row, "instruction", path, line)
    labels = [row[name] for name in votes]
    for name, label in zip(votes, labels):
        if isinstance(label, bool) or label not in (0, 1, 2):
            raise InputError(path, f"must be 0 (tie), 1 or 2, got {label!r}", line, name)
    responses = {1: _response(row, "response1", path, line), 2: _response(row, "response2", path, line)}
    extra = row.get("input")
    if not _blank(extra):
        if not isinstance(extra, str):
            raise InputError(path, f"must be text, got {type(extra).__name__}", line, "input")
        instruction = f"{instruction}\n\n{extra}"
    winner = next((side for side in (1, 2) if labels.count(side) >= 2), None)
    if winner is None:
        reason = TIE if labels.count(0) >= 2 else NO_MAJORITY
        return Skip(reason, f"annotators {labels}")
    return _pair(instruction, responses[winner], responses[3 - winner], "PandaLM testset-v1", row.get("idx"))


HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
_SPEAKER = re.compile(r"\n\n(Human|Assistant):")


def hh_rlhf(row: Any, path: str, line: int) -> dict[str, Any] | Skip:
    """Anthropic/hh-rlhf: `chosen` and `rejected`, each a whole transcript ("\\n\\nHuman: ...
    \\n\\nAssistant: ..."). Both are cut at the last "\\n\\nAssistant:" inside their common prefix:
    before it is the prompt (Human -> user, Assistant -> assistant), after it each reply. Skipped as
    `prompts_differ` when the transcripts part before their last reply, as `no_user_turn` when the
    prompt has no non-empty Human turn at its end."""
    row = _columns(row, path, line, "hh-rlhf", "chosen", "rejected")
    chosen, rejected = (_text(row, name, path, line) for name in ("chosen", "rejected"))
    chosen, rejected = (("\n\n" + t) if t.startswith("Human:") else t for t in (chosen, rejected))
    cut = chosen.rfind(ASSISTANT, 0, len(os.path.commonprefix([chosen, rejected])))
    replies = [text[cut + len(ASSISTANT) :] for text in (chosen, rejected)]
    if cut < 0 or any(HUMAN in reply for reply in replies):
        return Skip(PROMPTS_DIFFER, "the two transcripts differ before their last Assistant turn")
    parts = _SPEAKER.split(chosen[:cut])
    messages = [
        {"role": "user" if speaker == "Human" else "assistant", "content": content.strip()}
        for speaker, content in zip(parts[1::2], parts[2::2])
    ]
    if parts[0].strip() or not messages or messages[-1]["role"] != "user" or not messages[-1]["content"]:
        return Skip(NO_USER_TURN, "the transcript does not end its prompt with a non-empty Human turn")
    return _pair(messages, replies[0].strip(), replies[1].strip(), "Anthropic/hh-rlhf")


def _reply_chat(row: dict, name: str, path: str, line: int) -> list[dict[str, str]]:
    """An UltraFeedback `chosen`/`rejected`: {role, content} messages ending with the assistant reply."""
    chat = row[name]
    ok = (
        isinstance(chat, list)
        and chat
        and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in chat)
    )
    if not ok or chat[-1].get("role") != "assistant":
        raise InputError(
            path,
            "must be a list of {role, content} messages ending with the assistant's reply",
            line,
            name,
            fix="HuggingFaceH4/ultrafeedback_binarized rows hold [user message, assistant reply]",
        )
    return [{"role": str(m.get("role")), "content": m["content"]} for m in chat]


def _score(row: dict, name: str, path: str, line: int) -> float:
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(path, f"must be a number, got {type(value).__name__}", line, name)
    return float(value)


def ultrafeedback_binarized(row: Any, path: str, line: int) -> dict[str, Any] | Skip:
    """HuggingFaceH4/ultrafeedback_binarized (the *_prefs splits): `prompt` (text), `chosen` and
    `rejected` (messages ending with the assistant reply), `score_chosen`, `score_rejected`,
    `prompt_id`. The prompt is the messages before the reply (`prompt` when there are none); equal
    scores are skipped as `tie`, conversations that differ before the reply as `prompts_differ`."""
    names = ("prompt", "chosen", "rejected", "score_chosen", "score_rejected")
    row = _columns(row, path, line, "ultrafeedback-binarized", *names)
    prompt = _text(row, "prompt", path, line)
    chosen, rejected = (_reply_chat(row, name, path, line) for name in ("chosen", "rejected"))
    if _score(row, "score_chosen", path, line) == _score(row, "score_rejected", path, line):
        return Skip(TIE, f"score_chosen = score_rejected = {row['score_chosen']}")
    if chosen[:-1] != rejected[:-1]:
        return Skip(PROMPTS_DIFFER, "chosen and rejected differ before the reply")
    history = chosen[:-1] or prompt
    return _pair(
        history,
        chosen[-1]["content"],
        rejected[-1]["content"],
        "HuggingFaceH4/ultrafeedback_binarized",
        row.get("prompt_id"),
    )


def reward_bench(row: Any, path: str, line: int) -> dict[str, Any] | Skip:
    """allenai/reward-bench: `prompt`, `chosen`, `rejected` (text), `subset` (the source), `id`."""
    row = _columns(row, path, line, "reward-bench", "prompt", "chosen", "rejected", "subset")
    prompt, chosen, rejected, subset = (_text(row, n, path, line) for n in ("prompt", "chosen", "rejected", "subset"))
    return _pair(prompt, chosen, rejected, subset, row.get("id"))


FORMATS: dict[str, Converter] = {
    "rlaif": rlaif_row,
    "mt-bench-human": mt_bench_human,
    "pandalm": pandalm,
    "hh-rlhf": hh_rlhf,
    "ultrafeedback-binarized": ultrafeedback_binarized,
    "reward-bench": reward_bench,
}

UPSTREAM = {
    "rlaif": "rlaif gold (prompt, chosen, rejected)",
    "mt-bench-human": "lmsys/mt_bench_human_judgments",
    "pandalm": "WeOpenML/PandaLM testset-v1",
    "hh-rlhf": "Anthropic/hh-rlhf",
    "ultrafeedback-binarized": "HuggingFaceH4/ultrafeedback_binarized",
    "reward-bench": "allenai/reward-bench",
}


def converter(name: str) -> Converter:
    """The converter of a format name; an unknown name is an InputError listing the known ones.

    >>> converter("pandalm").__name__
    'pandalm'
    >>> converter("alpaca")
    Traceback (most recent call last):
    ...
    rlaif.core.errors.InputError: --gold-format: unknown format 'alpaca' - use one of: rlaif, mt-bench-human, pandalm, hh-rlhf, ultrafeedback-binarized, reward-bench
    """
    if name not in FORMATS:
        raise InputError("--gold-format", f"unknown format {name!r}", fix=f"use one of: {', '.join(FORMATS)}")
    return FORMATS[name]
