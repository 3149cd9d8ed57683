"""Quality primitives: MinHash near-duplicates, refusal/boilerplate patterns, language, decontamination,
prompt filtering and the length-bias cap - all on crafted texts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rlaif.config.recipe import DecontaminateSpec, FilterSpec
from rlaif.core.errors import InputError
from rlaif.core.schema import PreferencePair, Prompt
from rlaif.quality.decontam import EvalIndex, build_eval_index, read_eval_texts
from rlaif.quality.dedup import NearDuplicateIndex, similarity
from rlaif.quality.filters import length_cap_drops
from rlaif.quality.prompts import PromptChecker
from rlaif.quality.text import BOILERPLATE_PATTERNS, REFUSAL_PATTERNS, matches_any, wrong_language
from rlaif.store.versions import read_table
from tests.conftest import MT_BENCH_GOLD, ROOT, shared_data

BASE = "Write a short paragraph explaining why the sky appears blue during the day and red at sunset."
NEAR = [
    "Write a short paragraph explaining why the sky looks blue during the day and red at sunset.",  # one word changed
    "Write a brief paragraph explaining why the sky appears blue during the day and red at sunset.",  # another word
    "write a short paragraph, explaining why the sky appears blue during the day (and red at sunset)!",  # case, punctuation
    "Write  a short paragraph explaining\nwhy the sky appears blue during the day and red at sunset .",  # whitespace
]
DIFFERENT = [
    "Write a short paragraph explaining why the ocean is salty.",
    "List three benefits of regular exercise for older adults.",
    "Translate 'good morning' into French.",
]


def prompt(pid: str, text: str, system: str | None = "Be brief.") -> Prompt:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return Prompt(id=pid, messages=messages)


def test_minhash_finds_near_duplicates_that_exact_matching_misses():
    index = NearDuplicateIndex(threshold=0.8)
    index.add("base", BASE)
    for text in NEAR:
        assert text != BASE and text.strip() != BASE  # exact matching misses every one of them
        assert index.find(text) is not None and index.find(text)[0] == "base", text
        assert similarity(text, BASE) >= 0.8
    for text in DIFFERENT:
        assert index.find(text) is None, text
        assert similarity(text, BASE) < 0.5


def test_near_duplicate_index_keeps_the_earliest_and_is_deterministic():
    first, second = NearDuplicateIndex(0.8, num_perm=64, seed=7), NearDuplicateIndex(0.8, num_perm=64, seed=7)
    for index in (first, second):
        index.add("a", BASE)
        index.add("b", NEAR[0])
    assert first.find(NEAR[1]) == second.find(NEAR[1])
    assert first.find(NEAR[1])[0] == "a"  # both match; the first added wins


def test_different_numbers_are_never_near_duplicates():
    assert (
        similarity(
            "What is 17 * 23? Show your working step by step.", "What is 17 * 24? Show your working step by step."
        )
        == 0.0
    )
    assert (
        similarity("The total comes to 1,250 dollars after tax.", "The total comes to 1,250 dollars after tax!") == 1.0
    )
    index = NearDuplicateIndex(0.8)
    index.add(0, "Resume question 12?")
    assert index.find("Resume question 13?") is None and index.find("resume question 12") == (0, 1.0)


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "I\u2019m sorry, but I cannot assist with this request.",
        "I cannot help you with that.",
        "I must respectfully decline to write that.",
        "Sorry - I am unable to provide that request right now.",
    ],
)
def test_refusals_are_detected(text):
    assert matches_any(text, REFUSAL_PATTERNS)


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry to hear about your cat. Here is how to help her recover: keep her warm.",
        "You cannot help but admire the view from the top.",
        "Paris is the capital of France.",
    ],
)
def test_helpful_answers_are_not_refusals_or_boilerplate(text):
    assert not matches_any(text, REFUSAL_PATTERNS) and not matches_any(text, BOILERPLATE_PATTERNS)


@pytest.mark.parametrize(
    "text",
    [
        "As an AI language model, I don't have personal opinions, but many people like pizza.",
        "I am just an AI, so I cannot feel cold.",
        "Honestly, I don’t have personal opinions, but many people like pizza.",
        "My knowledge cutoff is 2021, so I may not know the latest results.",
    ],
)
def test_boilerplate_is_detected(text):
    assert matches_any(text, BOILERPLATE_PATTERNS)


def test_language_check_is_confident_or_silent():
    english = ("en",)
    assert wrong_language("Die Hauptstadt von Frankreich ist Paris, eine sehr schöne Stadt.", english, 20, 0.8)
    assert wrong_language(
        "La capital de Francia es París, una ciudad muy bonita que tiene muchos museos y parques.", english, 20, 0.8
    )
    # short technical English that the detector half-believes is Nigerian Pidgin (p = 0.57): kept at 0.8
    assert not wrong_language("Mitochondria make energy from food: ATP, by respiration.", english, 20, 0.8)
    assert wrong_language("Mitochondria make energy from food: ATP, by respiration.", english, 20, 0.5)
    assert not wrong_language("The capital of France is Paris, a very beautiful city.", english, 20, 0.8)
    assert not wrong_language("Die Hauptstadt ist Paris.", english, 40, 0.8)  # too short to judge
    code = "Here is the function:\n```python\ndef verdoppeln(zahl):\n    return zahl * 2  # Zahl verdoppeln\n```\nIt doubles a number."
    assert not wrong_language(code, english, 20, 0.8)  # code blocks do not count as prose
    assert not wrong_language(
        "Die Hauptstadt von Frankreich ist Paris, eine sehr schöne Stadt.", ("en", "de"), 20, 0.8
    )


def test_decontamination_by_exact_ngram_and_minhash(tmp_path):
    eval_file = tmp_path / "eval.jsonl"
    rows = [
        {
            "prompt": "Explain the difference between a virus and a bacterium in terms a ten year old child would understand easily."
        },
        {
            "prompt": [{"role": "user", "content": "What is the boiling point of water at sea level?"}],
            "chosen": "100 C",
            "rejected": "50 C",
        },
        {
            "messages": [
                {"role": "system", "content": "x"},
                {"role": "user", "content": "Name a famous painting by Vermeer."},
            ]
        },
    ]
    eval_file.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    index = build_eval_index(DecontaminateSpec(path=str(eval_file)))
    assert index.contaminated("name a famous painting by vermeer")  # exact after normalisation
    # a 13-word run copied inside a longer prompt: no exact match, low overall similarity
    assert index.contaminated(
        "For my homework: explain the difference between a virus and a bacterium in terms a ten year old child would understand easily, then list five diseases."
    )
    assert index.contaminated("What's the boiling point of water at sea level?")  # short paraphrase: MinHash
    assert not index.contaminated("What is the freezing point of water on Mount Everest?")
    assert not index.contaminated("Name a famous sculpture by Michelangelo.")
    assert not EvalIndex(ngram=13, similarity=None).contaminated("anything at all")


def test_decontamination_reads_the_shared_preference_sets():
    path = shared_data(MT_BENCH_GOLD)
    texts = read_eval_texts(path)
    assert len(texts) == sum(1 for line in path.read_text().splitlines() if line.strip())
    index = build_eval_index(DecontaminateSpec(path=str(path)))
    assert index.contaminated(texts[0]) and index.contaminated("  " + texts[5].upper() + "  ")
    assert not index.contaminated("Give me a recipe for banana bread without eggs.")


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "evaluation file not found"),
        ('{"prompt": "ok"}\nnot json\n', "row 2: not valid JSON"),
        ('{"prompt": "ok"}\n{"question": "x"}\n', "row 2, field 'messages'"),
        ('{"prompt": [{"role": "assistant", "content": "x"}]}\n', "row 1, field 'prompt'"),
        ("\n", "no rows in the evaluation file"),
    ],
)
def test_eval_file_errors_name_file_row_and_field(tmp_path, content, message):
    path = tmp_path / "eval.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match="eval.jsonl") as info:
        read_eval_texts(path)
    assert message in str(info.value)


def prompt_reasons(prompts, spec) -> list:
    """What a run decides for each prompt in order (rlaif.pipeline.runner.prompt_chunks asks the same checker)."""
    checker = PromptChecker(spec)
    return [checker.reason(p) for p in prompts]


def test_prompt_filters_give_every_reason_and_keep_the_first(tmp_path):
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(json.dumps({"prompt": "Name the largest planet in the solar system."}) + "\n")
    prompts = [
        prompt("p1", BASE),
        prompt(
            "p2", "  " + BASE + "\n", system="Another system prompt"
        ),  # duplicate: user turn only, whitespace aside
        prompt("p3", NEAR[0]),  # near duplicate of p1
        prompt("p4", "Name the largest planet in the solar system!"),  # in the eval set
        prompt("p5", DIFFERENT[0]),
        prompt("p6", DIFFERENT[0].replace("ocean", "Dead Sea")),  # different enough to keep
    ]
    spec = FilterSpec(decontaminate={"path": str(eval_file)})
    assert prompt_reasons(prompts, spec) == [None, "duplicate", "near_duplicate", "contaminated", None, None]
    # switches: exact only; nothing
    assert prompt_reasons(prompts, FilterSpec(prompt_near_duplicate=None)) == [
        None,
        "duplicate",
        None,
        None,
        None,
        None,
    ]
    assert prompt_reasons(prompts, FilterSpec(dedup_prompts=False)) == [None] * 6


def test_prompts_differing_only_in_system_message_or_numbers_are_kept():
    prompts = [prompt(f"q{i}", f"Question number {i}: name a colour.") for i in range(30)]
    assert prompt_reasons(prompts, FilterSpec()) == [None] * 30


def pair(index: int, chosen_len: int, rejected_len: int, margin: float) -> PreferencePair:
    return PreferencePair(
        prompt=[{"role": "user", "content": "q"}],
        chosen=[{"role": "assistant", "content": "x" * chosen_len}],
        rejected=[{"role": "assistant", "content": "y" * rejected_len}],
        prompt_id=f"p{index}",
        chosen_id=f"p{index}/c",
        rejected_id=f"p{index}/r",
        chosen_policy="a",
        rejected_policy="a",
        p_chosen=(1 + margin) / 2,
        margin=margin,
        p_chosen_raw_ab=0.5,
        p_chosen_raw_ba=0.5,
        judge_model="m",
        judge_template_sha256="s",
    )


def test_length_cap_drops_lowest_margin_chosen_longer_pairs_first():
    margins = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6]  # 8 chosen-longer pairs
    pairs = [pair(i, 20, 10, m) for i, m in enumerate(margins)] + [
        pair(8, 5, 10, 0.4),
        pair(9, 10, 10, 0.4),
    ]  # shorter, equal

    def cap(pairs, share):
        keys = lambda ps: [(pairs[i].prompt_id, pairs[i].chosen_id, pairs[i].rejected_id) for i in ps]  # noqa: E731
        longer = [len(p.chosen[0]["content"]) > len(p.rejected[0]["content"]) for p in pairs]
        return length_cap_drops([p.margin for p in pairs], longer, share, keys)

    # 8 of 10 chosen-longer, cap 0.6: drop k = ceil((8 - 6) / 0.4) = 5, the margins 0.1, 0.2, 0.3, 0.5, 0.6 (positions 1, 5, 3, 2, 7)
    assert cap(pairs, 0.6) == {1, 2, 3, 5, 7}  # 3 of the 5 left are chosen-longer: 0.6
    assert cap(pairs, None) == set() and cap(pairs, 1.0) == set()
    assert cap(pairs[8:], 0.5) == set()  # no chosen-longer pair: nothing to drop
    tied = [pair(i, 20, 10, 0.5) for i in (3, 1, 2)] + [pair(9, 5, 10, 0.9)]
    assert cap(tied, 0.5) == {1, 2}  # (3 - 2) / 0.5 = 2 of the tied margins go: prompt ids p1 and p2 first


# Runs in a child process, so that Prefect's ephemeral server starts and stops there (as in test_report).
FLOW_SCRIPT = """
import json, sys
from rlaif.backends import BACKENDS
BACKENDS["transformers"] = "tests.fakes:FakeBackend"  # the scripted fake policy and judge
from rlaif.flows.pipeline import rlaif_run
result = rlaif_run(recipe_path=sys.argv[1], store=sys.argv[2])
print(json.dumps({"lines": result["lines"], "manifest": result["manifest"], "version_id": result["version_id"]}, default=str))
"""


@pytest.mark.slow
def test_flow_drops_prompts_before_sampling_and_records_them(tmp_path):
    """A real Prefect flow run: dropped prompts are never sampled, and the manifest and summary count them."""
    (tmp_path / "eval.jsonl").write_text(
        json.dumps({"prompt": "What is the boiling point of water at sea level?"}) + "\n"
    )
    texts = [
        "Name a colour.",
        "Name a colour.",
        "name a colour!",
        "What's the boiling point of water at sea level?",
        "Give a fruit.",
    ]
    (tmp_path / "prompts.jsonl").write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": t}) + "\n" for i, t in enumerate(texts))
    )
    recipe = {
        "name": "dedup",
        "prompts": {"path": str(tmp_path / "prompts.jsonl")},
        "policies": [{"name": "fake"}],
        "samples_per_prompt": 2,
        "filters": {"decontaminate": {"path": str(tmp_path / "eval.jsonl")}, "consistency": False, "min_margin": 0.0},
    }
    (tmp_path / "recipe.yaml").write_text(json.dumps(recipe))
    env = {**os.environ, "RLAIF_PROGRESS": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    args = [sys.executable, "-c", FLOW_SCRIPT, str(tmp_path / "recipe.yaml"), str(tmp_path / "store")]
    child = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    counts = out["manifest"]["counts"]
    assert counts["prompts_dropped"] == {"contaminated": 1, "duplicate": 1, "near_duplicate": 1}
    assert counts["prompts"] == 2 and counts["generations"] == 4
    generations = read_table(tmp_path / "store", out["version_id"], "generations")
    assert sorted({g["prompt_id"] for g in generations}) == ["p0", "p4"]  # nothing else was sampled
    assert "dropped before sampling: contaminated 1, duplicate 1, near_duplicate 1" in out["lines"][0]
    assert counts["in"] == counts["kept"] + sum(counts["dropped"].values())
