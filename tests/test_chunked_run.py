"""A run in chunks of prompts commits exactly what the whole run in one piece commits: the same
tables, manifest counts and version id for any chunk size, and the same as the former in-memory
path (sample all -> judge_stage -> select_pairs -> commit_version). Scripted backends."""

from __future__ import annotations

import json
import math
import re

import pytest

from rlaif.backends.base import Completion, Scores
from rlaif.cache import CallCache, CallStats
from rlaif.filters import filter_prompts, select_pairs
from rlaif.inputs import load_prompts
from rlaif.judging import judge_stage
from rlaif.pipeline import build_manifest, records
from rlaif.recipe import parse_recipe
from rlaif.runner import run_recipe
from rlaif.sampling import sample_policy
from rlaif.schema import content_hash
from rlaif.store.versions import TABLES, commit_version, load_manifest, read_table
from tests.fakes import FakeBackend

QUESTIONS = [f"Question number {i}: what is {i * 37 % 101} plus {i}?" for i in range(11)]
QUESTIONS[7] = QUESTIONS[2]  # an exact duplicate: dropped before sampling


def unit(text: str) -> float:
    return int(content_hash(text, 8), 16) / 16**8


def generate(request):
    text = request.messages[-1][1]
    if unit(f"fail{text}{request.seed}") < 0.08:
        raise RuntimeError("policy down")
    return Completion(text=f"answer {request.seed}" + " more" * int(unit(f"{text}{request.seed}") * 6) + f" to {text}", finish_reason="stop", completion_tokens=3)


def score(request):
    content = request.messages[-1][1]
    u = unit(content)
    if u < 0.05:
        raise RuntimeError("judge down")
    if u < 0.2:
        return Scores(probs=None, text="Output (a)" if u < 0.12 else "Output (b)")  # a parsed (hard) label
    a, b = re.search(r"# Output \(a\):\n(.*?)\n\n# Output \(b\):\n(.*?)\n\n# Which", content, re.S).groups()
    logit = 0.7 + 1.5 * ((len(a) > len(b)) - (len(a) < len(b))) + 3 * (unit("p" + content) - 0.5)  # first shown, longer
    p = 1 / (1 + math.exp(-logit))
    return Scores(probs={"a": 0.9 * p, "b": 0.9 * (1 - p)}, text="Output (a")


@pytest.fixture
def fake_backends(monkeypatch):
    from rlaif import sampling
    from rlaif.judges import common

    def factory(spec):
        backend = FakeBackend(spec, gen=generate, score=score)
        return backend

    monkeypatch.setattr(common, "make_backend", factory)
    monkeypatch.setattr(sampling, "make_backend", factory)


def recipe_for(tmp_path, judge=None, filters=None):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": q}) + "\n" for i, q in enumerate(QUESTIONS)))
    endpoint = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "fake"}
    return parse_recipe({
        "name": "chunks",
        "prompts": {"path": str(prompts)},
        "policies": [{**endpoint, "name": n, "params": {"temperature": 0.7, "max_tokens": 16, "seed": s}} for n, s in (("cold", 0), ("hot", 10))],
        "samples_per_prompt": 2,
        "judge": {**endpoint, **(judge or {})},
        "filters": {"min_margin": 0.05, "max_longer_share": 0.5, **(filters or {})},
    })


def former_run(recipe, store):
    """The run as it was before chunking: everything in memory, one commit from lists."""
    cache, stats = CallCache(store / "cache.sqlite"), CallStats()
    prompts, prompts_dropped = filter_prompts(load_prompts(recipe.prompts.path), recipe.filters)
    generations = [g for policy in recipe.policies for g in sample_policy(prompts, policy, recipe.samples_per_prompt, cache, stats)]
    outcome = judge_stage(prompts, generations, recipe.judge, recipe.filters, cache, stats)
    pairs, dropped = select_pairs(outcome.items, outcome.judgments, recipe.filters)
    manifest = build_manifest(recipe, prompts, generations, outcome, pairs, dropped, stats, prompts_dropped=prompts_dropped)
    tables = {
        "pairs": records(pairs), "generations": records(generations), "judgments": records(outcome.table),
        "prompts": records(prompts), "rankings": records(outcome.rankings), "feedback": records(outcome.feedback),
    }
    cache.close()
    return commit_version(store, recipe.name, tables, manifest)[0]


def comparable(store, version_id):
    manifest = load_manifest(store, version_id)
    for key in ("created_at", "id", "run"):  # "run": wall time and latencies, measurements not content
        manifest.pop(key)
    return manifest, {table: read_table(store, version_id, table) for table in TABLES}


@pytest.mark.parametrize("judge", [{}, {"pairs": "best_vs_worst", "debias": False}, {"type": "listwise", "permutations": 2}], ids=["pairwise", "pairwise-bvw", "listwise"])
def test_any_chunk_size_commits_the_same_version_as_the_former_run(tmp_path, fake_backends, judge):
    recipe = recipe_for(tmp_path, judge)
    expected = former_run(recipe, tmp_path / "former")
    want = comparable(tmp_path / "former", expected)
    counts = want[0]["counts"]
    assert counts["prompts_dropped"]["duplicate"] == 1 and counts["judgments"] > 0
    if judge == {}:  # every filter has work to do
        dropped = counts["dropped"]
        assert counts["kept"] > 0 and dropped["length_bias"] > 0 and dropped["generation_failed"] > 0
        assert dropped["judge_failed"] > 0 and dropped["inconsistent"] > 0
    for size in (1, 3, 100):
        store = tmp_path / f"chunks-{size}"
        version_id, created, manifest, run = run_recipe(recipe, store, chunk_size=size)
        assert created and version_id == expected, size
        assert comparable(store, version_id) == want
        assert run.chunks == (-(-10 // size) if judge.get("type") is None else 1)
        assert not (store / ".runs").exists() or not any((store / ".runs").iterdir())  # work folder removed


def test_rerun_is_all_cached_and_the_same_version(tmp_path, fake_backends):
    recipe = recipe_for(tmp_path)
    first = run_recipe(recipe, tmp_path / "s", chunk_size=4)
    again = run_recipe(recipe, tmp_path / "s", chunk_size=7)
    assert again[0] == first[0] and again[1] is False
    assert again[3].stats.live == 0 and again[3].stats.cached == first[3].stats.live


def test_each_model_is_loaded_once_per_run_and_one_at_a_time(tmp_path, monkeypatch):
    """Chunks must not reload models: each policy goes over every chunk, then the judge does."""
    from rlaif import sampling
    from rlaif.judges import common

    made, loaded, events = [], set(), []

    class Counting(FakeBackend):
        def load(self):
            super().load()
            loaded.add(id(self))
            events.append(("load", self.spec.model, len(loaded)))

        def close(self):
            loaded.discard(id(self))
            events.append(("close", self.spec.model, len(loaded)))

    def factory(spec):
        made.append(spec.model)
        return Counting(spec, gen=generate, score=score)

    monkeypatch.setattr(common, "make_backend", factory)
    monkeypatch.setattr(sampling, "make_backend", factory)
    recipe = recipe_for(tmp_path)
    data = recipe.model_dump()
    for policy, model in zip(data["policies"], ("fake-a", "fake-b")):
        policy["model"] = model
    data["judge"]["model"] = "fake-judge"
    recipe = parse_recipe(data)
    _, _, _, run = run_recipe(recipe, tmp_path / "s", chunk_size=3)
    assert run.chunks == 4
    assert made == ["fake-a", "fake-b", "fake-judge"]  # one backend per model for the whole run
    assert [e for e in events if e[0] == "load"] == [("load", "fake-a", 1), ("load", "fake-b", 1), ("load", "fake-judge", 1)]
    assert max(n for _, _, n in events) == 1 and not loaded  # one model at a time, all closed at the end


def test_same_engine_settings_share_one_loaded_backend(tmp_path, fake_backends):
    """Two policies and the judge on the same endpoint and model: one backend, loaded once."""
    from rlaif.backends import engine_key

    recipe = recipe_for(tmp_path)
    assert engine_key(recipe.policies[0]) == engine_key(recipe.policies[1]) == engine_key(recipe.judge)
    assert engine_key(recipe.policies[0]) != engine_key(recipe.policies[0].model_copy(update={"model": "other"}))


def test_no_prompt_left_after_filtering_is_a_clear_error_and_writes_nothing(tmp_path, fake_backends):
    from rlaif.errors import InputError

    recipe = recipe_for(tmp_path)
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text("".join(json.dumps({"prompt": q}) + "\n" for q in QUESTIONS))  # every prompt is in the eval set
    data = recipe.model_dump()
    data["filters"]["decontaminate"] = {"path": str(eval_file)}
    store = tmp_path / "s"
    with pytest.raises(InputError, match=r"prompts.jsonl: no prompt is left after the prompt filters \(contaminated 11\)"):
        run_recipe(parse_recipe(data), store)
    assert not (store / "versions").exists() and not any((store / ".runs").iterdir())


def test_manifest_records_the_evaluation_set_a_run_was_decontaminated_against(tmp_path, fake_backends):
    import hashlib

    from rlaif.store.lineage import lineage

    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(json.dumps({"prompt": QUESTIONS[3]}) + "\n")
    data = recipe_for(tmp_path).model_dump()
    data["filters"]["decontaminate"] = {"path": str(eval_file)}
    store = tmp_path / "s"
    version_id, _, manifest, _ = run_recipe(parse_recipe(data), store)
    assert manifest["counts"]["prompts_dropped"]["contaminated"] == 1
    recorded = load_manifest(store, version_id)["inputs"]["decontaminate"]
    assert recorded == {"path": str(eval_file), "sha256": hashlib.sha256(eval_file.read_bytes()).hexdigest()}
    assert lineage(store, version_id)["decontaminated_against"] == recorded
    assert "decontaminate" not in manifest_without_filter(tmp_path)["inputs"]


def manifest_without_filter(tmp_path):
    return run_recipe(recipe_for(tmp_path), tmp_path / "plain")[2]


def test_length_cap_from_compact_numbers_matches_the_cap_over_pairs():
    import random

    from rlaif.filters import length_cap_drops
    from rlaif.quality.length import cap_longer_share, chosen_is_longer
    from rlaif.schema import PreferencePair

    rng = random.Random(5)
    for share in (0.5, 0.6, 0.8):
        pairs = []
        for i in range(300):
            chosen, rejected = "x" * rng.randint(3, 12), "y" * rng.randint(1, 4)
            pid = f"p{rng.randint(0, 60)}"
            pairs.append(PreferencePair([], [{"content": chosen}], [{"content": rejected}], pid, f"{pid}/a/{i}", f"{pid}/b/{i}", "a", "b", 0.9, rng.choice([0.2, 0.5, 1.0]), 0.9, 0.9, "j", "s"))
        _, dropped = cap_longer_share(pairs, share)
        keys = lambda ps, pairs=pairs: [(pairs[p].prompt_id, pairs[p].chosen_id, pairs[p].rejected_id) for p in ps]  # noqa: E731
        drops = length_cap_drops([p.margin for p in pairs], [chosen_is_longer(p) for p in pairs], share, keys)
        assert sorted(drops) == sorted(i for i, p in enumerate(pairs) if any(p is d for d in dropped)) and drops
