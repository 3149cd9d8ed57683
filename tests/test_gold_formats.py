"""Public human-preference sets read in their own shape (`--gold-format`, rlaif.core.gold_formats):
one row per format, written as the upstream dataset gives it, converted end to end; the rows
skipped on purpose (counted by reason, never silently); and the errors, which name the file, the
row and the column and say what to do."""

from __future__ import annotations

import copy
import json

import pytest
from typer.testing import CliRunner

from rlaif.core.errors import InputError
from rlaif.core.gold import load_gold, load_gold_counted
from rlaif.core.gold_formats import FORMATS, Skip, converter

TURN_1 = "Compose an engaging travel blog post about a recent trip to Hawaii, highlighting cultural experiences and must-see attractions."
TURN_2 = "Rewrite your previous response. Start every sentence with the letter A."

# lmsys/mt_bench_human_judgments, split "human": each conversation holds both turns of its model
MT_BENCH = {
    "question_id": 81,
    "model_a": "alpaca-13b",
    "model_b": "gpt-3.5-turbo",
    "winner": "model_b",
    "judge": "author_2",
    "conversation_a": [
        {"content": TURN_1, "role": "user"},
        {"content": "I recently visited Hawaii. It was great and I saw many things.", "role": "assistant"},
        {"content": TURN_2, "role": "user"},
        {"content": "A trip to Hawaii was great. A lot of things were seen.", "role": "assistant"},
    ],
    "conversation_b": [
        {"content": TURN_1, "role": "user"},
        {
            "content": "Aloha! My recent trip to the Aloha State was a whirlwind of hula, luaus and volcanoes.",
            "role": "assistant",
        },
        {"content": TURN_2, "role": "user"},
        {"content": "Aloha! A recent trip to the Aloha State was a whirlwind.", "role": "assistant"},
    ],
    "turn": 1,
}

# WeOpenML/PandaLM data/testset-v1.json, idx 0 (one object per line; `input` is NaN where a task has none)
PANDALM = {
    "idx": 0,
    "motivation_app": "Grammarly",
    "cmp_key": "bloom-7b_llama-7b",
    "instruction": "The sentence you are given might be too wordy, complicated, or unclear. Rewrite the sentence and make your writing clearer by keeping it concise.",
    "input": "If you have any questions about my rate or if you find it necessary to increase or decrease the scope for this project, please let me know.",
    "response1": "If you have any questions about my rate, please let me know.",
    "response2": "If you have any questions, please let me know.",
    "annotator1": 2,
    "annotator2": 2,
    "annotator3": 2,
}

# Anthropic/hh-rlhf (helpful-base): two whole transcripts that differ only in the last reply
HH_PROMPT = (
    "\n\nHuman: What kind of noises did dinosaurs make?\n\nAssistant: Humans and dinosaurs didn't live at the same "
    "time, so it's really hard to say.\n\nHuman: yes they did\n\nAssistant: to guess, and that would probably "
    "require lots of reading and a certain amount of imagination.\n\nHuman: you cant read"
)
HH_RLHF = {
    "chosen": HH_PROMPT + "\n\nAssistant: You can read?",
    "rejected": HH_PROMPT + "\n\nAssistant: there's a lot of stuff humans don't know",
}

# HuggingFaceH4/ultrafeedback_binarized, split test_prefs
UF_PROMPT = "how can i develop a habit of drawing daily"
ULTRAFEEDBACK = {
    "prompt": UF_PROMPT,
    "prompt_id": "086b3e24f29b8956a01059f79c56db35d118a06fb6b844b095737d042795cd43",
    "chosen": [
        {"content": UF_PROMPT, "role": "user"},
        {
            "content": "Set aside a fixed time each day, start with small sketches and keep a sketchbook.",
            "role": "assistant",
        },
    ],
    "rejected": [
        {"content": UF_PROMPT, "role": "user"},
        {"content": "As an AI language model, I cannot personally develop habits for you.", "role": "assistant"},
    ],
    "messages": [
        {"content": UF_PROMPT, "role": "user"},
        {
            "content": "Set aside a fixed time each day, start with small sketches and keep a sketchbook.",
            "role": "assistant",
        },
    ],
    "score_chosen": 8.5,
    "score_rejected": 6.0,
}

# allenai/reward-bench, split "filtered"
REWARD_BENCH = {
    "prompt": "How do I detail a car?",
    "chosen": "Wash the car, clay the paint, polish, wax, then clean the interior and the windows.",
    "chosen_model": "gpt-4",
    "rejected": "Detailing a car is when you drive it.",
    "rejected_model": "Llama-2-70b-chat-hf",
    "subset": "alpacaeval-easy",
    "id": 30,
}

ROWS = {
    "mt-bench-human": MT_BENCH,
    "pandalm": PANDALM,
    "hh-rlhf": HH_RLHF,
    "ultrafeedback-binarized": ULTRAFEEDBACK,
    "reward-bench": REWARD_BENCH,
}


def write_rows(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def changed(row, **values):
    out = copy.deepcopy(row)
    out.update(values)
    return out


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


EXPECTED = {
    "mt-bench-human": (
        [user(TURN_1)],
        MT_BENCH["conversation_b"][1]["content"],
        MT_BENCH["conversation_a"][1]["content"],
        "mt-bench-human q81 turn 1 author_2",
    ),
    "pandalm": (
        [user(PANDALM["instruction"] + "\n\n" + PANDALM["input"])],
        PANDALM["response2"],
        PANDALM["response1"],
        "PandaLM testset-v1",
    ),
    "hh-rlhf": (
        [
            user("What kind of noises did dinosaurs make?"),
            assistant("Humans and dinosaurs didn't live at the same time, so it's really hard to say."),
            user("yes they did"),
            assistant(
                "to guess, and that would probably require lots of reading and a certain amount of imagination."
            ),
            user("you cant read"),
        ],
        "You can read?",
        "there's a lot of stuff humans don't know",
        "Anthropic/hh-rlhf",
    ),
    "ultrafeedback-binarized": (
        [user(UF_PROMPT)],
        ULTRAFEEDBACK["chosen"][1]["content"],
        ULTRAFEEDBACK["rejected"][1]["content"],
        "HuggingFaceH4/ultrafeedback_binarized",
    ),
    "reward-bench": (
        [user(REWARD_BENCH["prompt"])],
        REWARD_BENCH["chosen"],
        REWARD_BENCH["rejected"],
        "alpacaeval-easy",
    ),
}


@pytest.mark.parametrize("fmt", list(ROWS))
def test_one_upstream_row_per_format_converts_end_to_end(tmp_path, fmt):
    path = write_rows(tmp_path / f"{fmt}.jsonl", ["", ROWS[fmt]])
    gold = load_gold_counted(path, format=fmt)
    [pair] = gold.pairs
    assert (pair.prompt, pair.chosen, pair.rejected, pair.source) == EXPECTED[fmt]
    assert pair.row == 2 and gold.format == fmt and not gold.skipped  # rows keep their line numbers
    assert gold.lineage() == {"rows": 1, "format": fmt, "skipped": {}}


def test_the_default_format_is_ours_and_every_format_is_named():
    assert list(FORMATS) == [
        "rlaif",
        "mt-bench-human",
        "pandalm",
        "hh-rlhf",
        "ultrafeedback-binarized",
        "reward-bench",
    ]
    row = {"prompt": "q", "chosen": "a", "rejected": "b"}
    assert converter("rlaif")(row, "g.jsonl", 1) is row


def test_mt_bench_turn_2_is_kept_only_when_both_models_answered_turn_1_alike():
    first = MT_BENCH["conversation_a"][1]["content"]
    same = changed(MT_BENCH, turn=2, winner="model_a")
    same["conversation_b"][1]["content"] = first
    pair = converter("mt-bench-human")(same, "m.jsonl", 1)
    assert pair["prompt"] == [user(TURN_1), assistant(first), user(TURN_2)]
    assert (pair["chosen"], pair["rejected"]) == (
        MT_BENCH["conversation_a"][3]["content"],
        MT_BENCH["conversation_b"][3]["content"],
    )
    skip = converter("mt-bench-human")(changed(MT_BENCH, turn=2), "m.jsonl", 1)
    assert skip == Skip("turn2_histories_differ", "turn 2 after two different first replies")


def _hh(chosen_tail, rejected_tail, prompt=HH_PROMPT):
    return {"chosen": prompt + chosen_tail, "rejected": prompt + rejected_tail}


@pytest.mark.parametrize(
    "fmt, row, reason",
    [
        ("mt-bench-human", changed(MT_BENCH, winner="tie"), "tie"),
        ("mt-bench-human", changed(MT_BENCH, winner="tie (bothbad)"), "tie"),
        (
            "mt-bench-human",
            changed(MT_BENCH, conversation_b=[user("Another question"), *MT_BENCH["conversation_b"][1:]]),
            "prompts_differ",
        ),
        ("pandalm", changed(PANDALM, annotator1=0, annotator2=0, annotator3=1), "tie"),
        ("pandalm", changed(PANDALM, annotator1=0, annotator2=1, annotator3=2), "no_majority"),
        ("pandalm", changed(PANDALM, response1=PANDALM["response2"]), "identical_responses"),
        (
            "hh-rlhf",
            {
                "chosen": "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Bye\n\nAssistant: Bye!",
                "rejected": "\n\nHuman: Hi\n\nAssistant: Go away.\n\nHuman: Bye\n\nAssistant: Bye!",
            },
            "prompts_differ",
        ),
        ("hh-rlhf", _hh("\n\nAssistant: Same.", "\n\nAssistant: Same."), "identical_responses"),
        ("hh-rlhf", _hh("\n\nAssistant: A", "\n\nAssistant: B", prompt="\n\nHuman:  "), "no_user_turn"),
        ("ultrafeedback-binarized", changed(ULTRAFEEDBACK, score_rejected=8.5), "tie"),
        ("reward-bench", changed(REWARD_BENCH, rejected=REWARD_BENCH["chosen"] + " "), "identical_responses"),
    ],
)
def test_rows_without_a_usable_preference_are_skipped_with_a_reason(fmt, row, reason):
    result = converter(fmt)(row, "g.jsonl", 1)
    assert isinstance(result, Skip) and result.reason == reason and result.detail


def test_skips_are_counted_by_reason_and_limit_counts_kept_pairs(tmp_path):
    rows = [
        changed(PANDALM, annotator3=0),  # 2 of 3 agree: kept
        changed(PANDALM, annotator1=0, annotator2=0),  # tie
        changed(PANDALM, idx=2, annotator1=1, annotator2=1, annotator3=1),
        changed(PANDALM, annotator1=0, annotator2=1, annotator3=2),  # no majority
        PANDALM,
    ]
    path = write_rows(tmp_path / "pandalm.jsonl", rows)
    gold = load_gold_counted(path, format="pandalm")
    assert [p.row for p in gold.pairs] == [1, 3, 5]
    assert gold.pairs[1].chosen == PANDALM["response1"]  # annotators said 1
    assert gold.lineage() == {"rows": 3, "format": "pandalm", "skipped": {"no_majority": 1, "tie": 1}}
    limited = load_gold_counted(path, limit=2, format="pandalm")
    assert [p.row for p in limited.pairs] == [1, 3] and dict(limited.skipped) == {"tie": 1}
    assert load_gold(path, 2, "pandalm") == limited.pairs  # the old signature keeps working


def test_pandalm_nan_input_and_boolean_answers_as_in_its_json_file(tmp_path):
    path = tmp_path / "pandalm.jsonl"  # json.dumps writes NaN as the upstream file does
    path.write_text(json.dumps(changed(PANDALM, input=float("nan"), response2=True)) + "\n")
    [pair] = load_gold(path, format="pandalm")
    assert pair.prompt == [user(PANDALM["instruction"])] and pair.chosen == "True"
    assert converter("pandalm")(changed(PANDALM, input=None), "p", 1)["prompt"] == PANDALM["instruction"]
    assert converter("pandalm")(changed(PANDALM, input=""), "p", 1)["prompt"] == PANDALM["instruction"]


@pytest.mark.parametrize(
    "fmt, row, expected",
    [
        (
            "mt-bench-human",
            {k: v for k, v in MT_BENCH.items() if k != "winner"},
            "g.jsonl, row 1, field 'winner': missing column for --gold-format mt-bench-human (the row's columns: "
            "conversation_a, conversation_b, judge, model_a, model_b, question_id, turn) - --gold-format "
            "mt-bench-human reads lmsys/mt_bench_human_judgments rows; choose the format of this file (rlaif, ",
        ),
        (
            "mt-bench-human",
            changed(MT_BENCH, winner="model_c"),
            "field 'winner': unknown winner 'model_c' - expected model_a, model_b, tie or tie (bothbad)",
        ),
        ("mt-bench-human", changed(MT_BENCH, turn=3), "field 'turn': unknown turn 3 - MT-Bench turns are 1 or 2"),
        (
            "mt-bench-human",
            changed(MT_BENCH, turn=2, conversation_a=MT_BENCH["conversation_a"][:2]),
            "field 'conversation_a': must be a list of at least 4 messages (2 user and 2 assistant turns) for turn 2",
        ),
        (
            "mt-bench-human",
            changed(MT_BENCH, conversation_b=[assistant("x"), assistant("y")]),
            "field 'conversation_b': message 1 must be {'role': 'user', 'content': text}",
        ),
        ("pandalm", changed(PANDALM, annotator2=3), "row 1, field 'annotator2': must be 0 (tie), 1 or 2, got 3"),
        ("pandalm", changed(PANDALM, response1=None), "field 'response1': must be the response text, got NoneType"),
        ("hh-rlhf", changed(HH_RLHF, chosen=["not", "text"]), "field 'chosen': must be text (a string), got list"),
        (
            "hh-rlhf",
            {"prompt": "x"},
            "field 'chosen': missing column for --gold-format hh-rlhf (the row's columns: prompt)",
        ),
        (
            "ultrafeedback-binarized",
            changed(ULTRAFEEDBACK, chosen="plain text"),
            "field 'chosen': must be a list of {role, content} messages ending with the assistant's reply",
        ),
        (
            "ultrafeedback-binarized",
            changed(ULTRAFEEDBACK, score_chosen="high"),
            "field 'score_chosen': must be a number, got str",
        ),
        ("reward-bench", changed(REWARD_BENCH, subset=7), "field 'subset': must be text (a string), got int"),
        ("reward-bench", "[1, 2]", "g.jsonl, row 1: each row must be a JSON object"),
    ],
)
def test_bad_rows_name_the_file_row_and_column_and_say_what_to_do(tmp_path, fmt, row, expected):
    path = write_rows(tmp_path / "g.jsonl", [row])
    with pytest.raises(InputError) as info:
        load_gold(path, format=fmt)
    assert expected in str(info.value)


def test_unknown_format_all_skipped_and_json_array_files_are_errors(tmp_path):
    path = write_rows(tmp_path / "g.jsonl", [changed(MT_BENCH, winner="tie")] * 2)
    with pytest.raises(InputError, match="unknown format 'lmsys' - use one of: rlaif, mt-bench-human, pandalm"):
        load_gold(path, format="lmsys")
    with pytest.raises(InputError) as info:
        load_gold(path, format="mt-bench-human")
    assert "every row was skipped (tie 2): no pair to evaluate - check that --gold-format mt-bench-human" in str(
        info.value
    )
    array = tmp_path / "testset-v1.json"  # PandaLM's own file: a JSON array over many lines
    array.write_text(json.dumps([PANDALM, PANDALM], indent=4))
    with pytest.raises(InputError, match=r"testset-v1.json, row 1: a JSON array, not JSON Lines .* convert it first"):
        load_gold(array, format="pandalm")


def test_an_rlaif_file_read_as_an_upstream_format_says_which_columns_it_has(tmp_path):
    path = write_rows(tmp_path / "g.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    with pytest.raises(InputError, match=r"field 'instruction': missing column .*\(the row's columns: chosen, prompt"):
        load_gold(path, format="pandalm")


# --- the CLI, with the scripted judge of tests/test_evaluate.py (no model is loaded) ---


@pytest.fixture
def scripted_judge(monkeypatch):
    from rlaif import backends

    monkeypatch.setitem(backends.BACKENDS, "transformers", "tests.test_evaluate:ScriptedBackend")
    monkeypatch.setenv("RLAIF_PROGRESS", "0")


def test_eval_judge_reads_pandalm_rows_and_records_format_and_skips(tmp_path, scripted_judge):
    from rlaif.cli import app

    rows = [
        changed(PANDALM, idx=i, instruction=f"Task {i}.", response1=f"GOOD answer {i}", response2=f"meh {i}", **votes)
        for i, votes in enumerate(
            [
                {"annotator1": 1, "annotator2": 1, "annotator3": 1},
                {"annotator1": 0, "annotator2": 0, "annotator3": 1},  # tie
                {"annotator1": 1, "annotator2": 1, "annotator3": 0},
                {"annotator1": 0, "annotator2": 1, "annotator3": 2},  # no majority
                {"annotator1": 1, "annotator2": 2, "annotator3": 1},
            ]
        )
    ]
    gold = write_rows(tmp_path / "pandalm.jsonl", rows)
    args = ["eval-judge", "recipes/demo.yaml", "--gold", str(gold), "--store", str(tmp_path / "s")]
    result = CliRunner().invoke(app, [*args, "--gold-format", "pandalm", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n"] == 3 and data["agreement"] == 1.0  # the judge prefers GOOD, the annotators' majority
    assert data["gold"]["format"] == "pandalm" and data["gold"]["rows"] == 3
    assert data["gold"]["skipped"] == {"no_majority": 1, "tie": 1}
    saved = json.loads(open(data["path"]).read())
    assert saved["gold"] == data["gold"] and [o["row"] for o in saved["outcomes"]] == [1, 3, 5]
    table = CliRunner().invoke(app, [*args, "--gold-format", "pandalm"])
    assert (
        table.exit_code == 0 and "gold: 3 pairs kept from pandalm rows; skipped: no_majority 1, tie 1" in table.stdout
    )
    wrong = CliRunner().invoke(app, args)  # the same file read as our own format: a clear error, exit 2
    assert wrong.exit_code == 2 and "row 1, field 'prompt': missing field" in " ".join(wrong.output.split())


@pytest.mark.parametrize("command", ["eval-judge", "eval-rm"])
def test_an_unknown_gold_format_exits_2_listing_the_formats(tmp_path, command):
    from rlaif.cli import app

    gold = write_rows(tmp_path / "g.jsonl", [PANDALM])
    head = ["eval-judge", "recipes/demo.yaml"] if command == "eval-judge" else ["eval-rm", "--model", "none"]
    args = [*head, "--gold", str(gold), "--gold-format", "panda", "--store", str(tmp_path / "s")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "unknown format 'panda' - use one of: rlaif, mt-bench-human, pandalm, hh-rlhf" in " ".join(
        result.output.split()
    )
    assert not (tmp_path / "s").exists()
