"""A run in chunks of prompts commits exactly what the whole run in one piece commits: the same
tables, manifest counts and version id for any chunk size; and a tiny scripted run commits the
pairs and counts worked out by hand. Scripted backends."""

from __future__ import annotations

import json
import math
import re

import pytest

from rlaif.backends.base import Completion, Scores
from rlaif.config.recipe import parse_recipe
from rlaif.core.schema import content_hash
from rlaif.pipeline.runner import run_recipe
from rlaif.store.versions import TABLES, load_manifest, read_table
from tests.fakes import FakeBackend

QUESTIONS = [f"Question number {i}: what is {i * 37 % 101} plus {i}?" for i in range(11)]
QUESTIONS[7] = QUESTIONS[2]  # an exact duplicate: dropped before sampling


def unit(text: str) -> float:
    return int(content_hash(text, 8), 16) / 16**8


def generate(request):
    text = request.messages[-1][1]
    if unit(f"fail{text}{request.seed}") < 0.08:
        raise RuntimeError("policy down")
    return Completion(
        text=f"answer {request.seed}" + " more" * int(unit(f"{text}{request.seed}") * 6) + f" to {text}",
        finish_reason="stop",
        completion_tokens=3,
    )


def score(request):
    content = request.messages[-1][1]
    u = unit(content)
    if u < 0.05:
        raise RuntimeError("judge down")
    if u < 0.2:
        return Scores(probs=None, text="Output (a)" if u < 0.12 else "Output (b)")  # a parsed (hard) label
    a, b = re.search(r"# Output \(a\):\n(.*?)\n\n# Output \(b\):\n(.*?)\n\n# Which", content, re.S).groups()
    logit = (
        0.7 + 1.5 * ((len(a) > len(b)) - (len(a) < len(b))) + 3 * (unit("p" + content) - 0.5)
    )  # first shown, longer
    p = 1 / (1 + math.exp(-logit))
    return Scores(probs={"a": 0.9 * p, "b": 0.9 * (1 - p)}, text="Output (a")


@pytest.fixture
def fake_backends(monkeypatch):
    from rlaif.judges import common
    from rlaif.pipeline import sampling

    def factory(spec):
        backend = FakeBackend(spec, gen=generate, score=score)
        return backend

    monkeypatch.setattr(common, "make_backend", factory)
    monkeypatch.setattr(sampling, "make_backend", factory)


ENDPOINT = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}


def recipe_for(tmp_path, judge=None, filters=None, models=("fake", "fake", "fake"), engine=ENDPOINT):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": q}) + "\n" for i, q in enumerate(QUESTIONS)))
    return parse_recipe(
        {
            "name": "chunks",
            "prompts": {"path": str(prompts)},
            "policies": [
                {**engine, "model": m, "name": n, "params": {"temperature": 0.7, "max_tokens": 16, "seed": s}}
                for m, n, s in zip(models, ("cold", "hot"), (0, 10))
            ],
            "samples_per_prompt": 2,
            "judge": {**engine, "model": models[2], **(judge or {})},
            "filters": {"min_margin": 0.05, "max_longer_share": 0.5, **(filters or {})},
        }
    )


def comparable(store, version_id):
    manifest = load_manifest(store, version_id)
    for key in ("created_at", "id", "run"):  # "run": wall time and latencies, measurements not content
        manifest.pop(key)
    return manifest, {table: read_table(store, version_id, table) for table in TABLES}


@pytest.mark.parametrize(
    "judge",
    [{}, {"pairs": "best_vs_worst", "debias": False}, {"type": "listwise"}],
    ids=["pairwise", "pairwise-bvw", "listwise"],
)
def test_any_chunk_size_commits_the_same_version_as_the_run_in_one_chunk(tmp_path, fake_backends, judge):
    recipe = recipe_for(tmp_path, judge)
    expected = run_recipe(recipe, tmp_path / "whole", chunk_size=100)[0]
    want = comparable(tmp_path / "whole", expected)
    counts = want[0]["counts"]
    assert counts["prompts_dropped"]["duplicate"] == 1 and counts["judgments"] > 0
    if judge == {}:  # every filter has work to do
        dropped = counts["dropped"]
        assert counts["kept"] > 0 and dropped["length_bias"] > 0 and dropped["generation_failed"] > 0
        assert dropped["judge_failed"] > 0 and dropped["inconsistent"] > 0
    for size in (1, 3):
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


def counting_backends(monkeypatch):
    """Backends that record when they are made, loaded and closed, and what is loaded at once."""
    from rlaif.judges import common
    from rlaif.pipeline import sampling

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
    return made, loaded, events


def test_each_model_is_loaded_once_per_run_and_one_at_a_time(tmp_path, monkeypatch):
    """Local engines: chunks must not reload models; each policy goes over every chunk, then the judge does."""
    made, loaded, events = counting_backends(monkeypatch)
    recipe = recipe_for(tmp_path, models=("fake-a", "fake-b", "fake-judge"), engine={"backend": "transformers"})
    _, _, _, run = run_recipe(recipe, tmp_path / "s", chunk_size=3)
    assert run.chunks == 4 and not run.api_only
    assert made == ["fake-a", "fake-b", "fake-judge"]  # one backend per model for the whole run
    assert [e for e in events if e[0] == "load"] == [
        ("load", "fake-a", 1),
        ("load", "fake-b", 1),
        ("load", "fake-judge", 1),
    ]
    assert max(n for _, _, n in events) == 1 and not loaded  # one model at a time, all closed at the end


def test_api_models_are_loaded_once_and_work_together_with_the_same_version(tmp_path, monkeypatch):
    """Every model an API: each backend made once, all open together (the steps of a chunk overlap), all closed at the end."""
    made, loaded, events = counting_backends(monkeypatch)
    recipe = recipe_for(tmp_path, models=("fake-a", "fake-b", "fake-judge"))
    version_id, _, _, run = run_recipe(recipe, tmp_path / "s", chunk_size=3)
    assert run.chunks == 4 and run.api_only
    assert sorted(made) == ["fake-a", "fake-b", "fake-judge"]
    assert max(n for _, _, n in events) == 3 and not loaded
    local = run_recipe(
        recipe_for(tmp_path, models=("fake-a", "fake-b", "fake-judge"), engine={"backend": "transformers"}),
        tmp_path / "t",
        chunk_size=3,
    )
    assert len(local[0]) == len(version_id)  # (the ids differ: the backend is part of the recipe)


def test_same_engine_settings_share_one_loaded_backend(tmp_path, fake_backends):
    """Two policies and the judge on the same endpoint and model: one backend, loaded once."""
    from rlaif.backends import engine_key

    recipe = recipe_for(tmp_path)
    assert engine_key(recipe.policies[0]) == engine_key(recipe.policies[1]) == engine_key(recipe.judge)
    assert engine_key(recipe.policies[0]) != engine_key(recipe.policies[0].model_copy(update={"model": "other"}))


def test_no_prompt_left_after_filtering_is_a_clear_error_and_writes_nothing(tmp_path, fake_backends):
    from rlaif.core.errors import InputError

    recipe = recipe_for(tmp_path)
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(
        "".join(json.dumps({"prompt": q}) + "\n" for q in QUESTIONS)
    )  # every prompt is in the eval set
    data = recipe.model_dump(exclude_unset=True)
    data["filters"]["decontaminate"] = {"path": str(eval_file)}
    store = tmp_path / "s"
    with pytest.raises(
        InputError, match=r"prompts.jsonl: no prompt is left after the prompt filters \(contaminated 11\)"
    ):
        run_recipe(parse_recipe(data), store)
    assert not (store / "versions").exists() and not any((store / ".runs").iterdir())


def test_manifest_records_the_evaluation_set_a_run_was_decontaminated_against(tmp_path, fake_backends):
    import hashlib

    from rlaif.store.lineage import lineage

    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(json.dumps({"prompt": QUESTIONS[3]}) + "\n")
    data = recipe_for(tmp_path).model_dump(exclude_unset=True)
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


def tiny_generate(request):
    """Prompt A gets a short and a long answer (seeds 0, 1); prompt B the same answer twice."""
    if "A" in request.messages[-1][1]:
        return Completion(
            text="short" if request.seed == 0 else "a much longer answer", finish_reason="stop", completion_tokens=3
        )
    return Completion(text="same", finish_reason="stop", completion_tokens=1)


def tiny_score(request):
    """The judge prefers the longer answer in either position: P = 0.8, no position bias."""
    a, b = re.search(
        r"# Output \(a\):\n(.*?)\n\n# Output \(b\):\n(.*?)\n\n# Which", request.messages[-1][1], re.S
    ).groups()
    p = 0.8 if len(a) > len(b) else 0.2
    return Scores(probs={"a": p, "b": 1 - p}, text="Output (a")


def test_a_tiny_scripted_run_commits_the_pairs_and_counts_worked_out_by_hand(tmp_path, monkeypatch):
    from rlaif.judges import common
    from rlaif.pipeline import sampling

    factory = lambda spec: FakeBackend(spec, gen=tiny_generate, score=tiny_score)  # noqa: E731
    monkeypatch.setattr(common, "make_backend", factory)
    monkeypatch.setattr(sampling, "make_backend", factory)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        json.dumps({"id": "a", "prompt": "Tell me A."}) + "\n" + json.dumps({"id": "b", "prompt": "Tell me B."}) + "\n"
    )
    endpoint = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "fake"}
    recipe = parse_recipe(
        {"name": "tiny", "prompts": {"path": str(prompts)}, "policies": [{**endpoint, "name": "p"}], "judge": endpoint}
    )
    version_id, created, manifest, _ = run_recipe(recipe, tmp_path / "s")
    # 2 prompts x 2 samples; one candidate pair per prompt; B's pair is identical (never judged);
    # A's pair judged in both orders: P(short better) = 0.2 both ways, so no bias (beta 0), consistent, margin 0.6
    counts = manifest["counts"]
    assert (counts["prompts"], counts["generations"], counts["in"], counts["kept"], counts["judgments"]) == (
        2,
        4,
        2,
        1,
        1,
    )
    assert {k: v for k, v in counts["dropped"].items() if v} == {"identical": 1}
    assert manifest["calls"] == {"live": 4 + 2, "cached": 0, "failed": 0}
    (pair,) = read_table(tmp_path / "s", version_id, "pairs")
    assert (pair["prompt_id"], pair["chosen"][0]["content"], pair["rejected"][0]["content"]) == (
        "a",
        "a much longer answer",
        "short",
    )
    assert (pair["p_chosen"], pair["margin"], pair["p_chosen_raw_ab"], pair["p_chosen_raw_ba"]) == pytest.approx(
        (0.8, 0.6, 0.8, 0.8)
    )
    assert (
        manifest["judge"]["position_bias"]["beta"] == pytest.approx(0.0, abs=1e-9)
        and manifest["judge"]["prefers_longer"] == 1.0
    )


@pytest.mark.parametrize("judge", [{}, {"type": "listwise"}], ids=["chunked-pairwise", "one-piece-listwise"])
def test_template_hashes_are_the_ones_judging_used_not_reread_at_commit(tmp_path, fake_backends, judge):
    import hashlib
    import shutil

    from tests.conftest import ROOT

    kind = judge.get("type", "pairwise")
    template = tmp_path / f"{kind}_judge.j2"
    shutil.copy(ROOT / "rlaif" / "judges" / "prompts" / f"{kind}_judge.j2", template)
    judged_with = hashlib.sha256(template.read_bytes()).hexdigest()
    recipe = recipe_for(tmp_path, {**judge, "template": str(template)})

    def edit_after_judging(run):  # after every chunk is judged (phase 1), before the commit reads anything
        if kind == "pairwise":
            template.write_text(template.read_text() + "\n{# edited after judging #}\n")

    store = tmp_path / "s"
    version_id, _, manifest, _ = run_recipe(recipe, store, chunk_size=3, after_chunks=edit_after_judging)
    assert manifest["prompt_templates"] == {template.name: judged_with}
    assert {j["template_sha256"] for j in read_table(store, version_id, "judgments")} == {judged_with}
    assert load_manifest(store, version_id)["prompt_templates"] == {template.name: judged_with}


@pytest.mark.parametrize("judge", [{}, {"type": "listwise"}], ids=["pairwise", "listwise"])
def test_a_judge_that_never_gives_a_verdict_stops_the_run_before_it_commits(monkeypatch, tmp_path, judge):
    """Issue 26 item 6: every judge answer unreadable (a wrong template or protocol) used to commit a 0-pair
    version with exit 0; now the run stops (exit code 3) quoting one answer, nothing committed, every call cached."""
    from rlaif.core.errors import RunIncomplete
    from rlaif.judges import common
    from rlaif.pipeline import sampling
    from rlaif.pipeline.runner import run_recipe
    from rlaif.store.versions import list_versions

    def chatty(request) -> Scores:
        return Scores(probs=None, text="Both outputs have their merits, so it depends on what you need.")

    factory = lambda spec: FakeBackend(spec, gen=generate, score=chatty)  # noqa: E731
    monkeypatch.setattr(common, "make_backend", factory)
    monkeypatch.setattr(sampling, "make_backend", factory)
    recipe = recipe_for(tmp_path, judge=judge, filters={"consistency": False, "min_margin": 0.0})
    with pytest.raises(RunIncomplete) as stopped:
        run_recipe(recipe, tmp_path / "store")
    message = " ".join(str(stopped.value).split())
    assert "judgments gave no verdict (unparseable" in message
    if not judge:  # pairwise judgments keep the answer itself
        assert "'Both outputs have their merits, so it depends on what you need.'" in message
    assert "raise its `max_tokens`" in message and list_versions(tmp_path / "store") == []


def test_a_run_that_keeps_no_pair_says_why_and_what_to_change():
    from rlaif.pipeline.summary import none_kept_line

    counts = {"dropped": {"identical": 9, "low_margin": 2}, "responses_dropped": {"truncated": 3}, "kept": 0, "in": 11}
    assert none_kept_line(counts) == (
        "no pair kept: the main reason was identical (9 pairs dropped) - the samples were identical: raise the policies' "
        "`params.temperature`, or sample from two policies"
    )
