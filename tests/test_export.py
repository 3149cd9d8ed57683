"""Export formats: exact rows per format and style from crafted versions, atomic writes, errors, CLI."""

from __future__ import annotations

import subprocess

import pyarrow.parquet as pq
import pytest

from rlaif.core.errors import StoreError
from rlaif.publish.export import DATA_FILE, export_version
from rlaif.store.formats import FORMATS, format_dataset, format_rows, preference_rows
from rlaif.store.rows import rankings_from_judgments
from rlaif.store.versions import commit_tables, version_path
from tests.badinput import run_cli

SYSTEM = {"role": "system", "content": "Be brief."}
P0 = [SYSTEM, {"role": "user", "content": "Say hi."}]
P1 = [{"role": "user", "content": "Name a colour."}]
P2 = [{"role": "user", "content": "What is 2+2?"}]
TEXTS = {
    "p0/smol/0": "Hello!",
    "p0/smol/1": "Hi there.",
    "p0/big/0": "Greetings, friend.",
    "p1/smol/0": "Blue.",
    "p1/smol/1": "Red.",
    "p2/smol/0": "4",
    "p2/smol/1": "4",
}

MANIFEST = {
    "recipe": {
        "name": "crafted",
        "policies": [
            {"name": "smol", "model": "smollm2-135m", "api_key_env": "RLAIF_TEST_KEY"},
            {"name": "big", "model": "big-model"},
        ],
        "judge": {"model": "smollm2-135m", "template": "prompts/pairwise_judge.j2", "api_key_env": "RLAIF_TEST_KEY"},
        "filters": {"consistency": True, "min_margin": 0.1},
    },
    "inputs": {"prompts": {"path": "data/prompts.jsonl", "sha256": "ab" * 32, "rows": 3}},
    "models": {
        "policies": [
            {"name": "smol", "backend": "transformers", "model": "smollm2-135m"},
            {"name": "big", "backend": "openai", "model": "big-model"},
        ],
        "judge": {"backend": "transformers", "model": "smollm2-135m"},
    },
    "prompt_templates": {"pairwise_judge.j2": "cd" * 32},
    "counts": {
        "prompts": 3,
        "generations": 7,
        "in": 5,
        "kept": 3,
        "dropped": {"identical": 1, "inconsistent": 1, "low_margin": 0},
        "judgments": 4,
    },
    "calls": {"live": 15, "cached": 0, "failed": 0},
    "tokens": {"prompt": 400, "completion": 60},
    "judge": {
        "type": "pairwise",
        "debias": True,
        "position_bias": {"beta": 0.8123, "mean_p_first": 0.69, "raw_consistency": 0.25, "consistency": 0.75, "n": 4},
        "mean_prob_mass": 0.91,
        "prefers_longer": 0.6667,
    },
}


def generation(gid: str) -> dict:
    prompt_id, policy, index = gid.split("/")
    return {
        "prompt_id": prompt_id,
        "policy": policy,
        "model": "m",
        "sample_index": int(index),
        "text": TEXTS[gid],
        "finish_reason": "stop",
    }


def judgment(a: str, b: str, p_a: float | None, error: str | None = None) -> dict:
    return {
        "prompt_id": a.split("/")[0],
        "a_id": a,
        "b_id": b,
        "p_a_ab": p_a,
        "p_a_ba": p_a,
        "soft": True,
        "p_a": p_a,
        "error": error,
    }


def pair(prompt: list[dict], chosen: str, rejected: str, p: float, texts: dict = TEXTS) -> dict:
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": texts[chosen]}],
        "rejected": [{"role": "assistant", "content": texts[rejected]}],
        "prompt_id": chosen.split("/")[0],
        "chosen_id": chosen,
        "rejected_id": rejected,
        "chosen_policy": chosen.split("/")[1],
        "rejected_policy": rejected.split("/")[1],
        "p_chosen": p,
        "margin": round(2 * p - 1, 6),
        "p_chosen_raw_ab": p,
        "p_chosen_raw_ba": p,
        "judge_model": "smollm2-135m",
        "judge_template_sha256": "cd" * 32,
    }


PAIRS = [
    pair(P0, "p0/smol/0", "p0/smol/1", 0.8),
    pair(P0, "p0/big/0", "p0/smol/0", 0.7),
    pair(P1, "p1/smol/0", "p1/smol/1", 0.9),
]
JUDGMENTS = [
    judgment("p0/smol/0", "p0/smol/1", 0.8),
    judgment("p0/smol/0", "p0/big/0", 0.3),
    judgment("p0/smol/1", "p0/big/0", 0.55),  # inconsistent: dropped from pairs, still judged
    judgment("p1/smol/0", "p1/smol/1", 0.9),
]
PROMPTS = [
    {"id": "p0", "messages": P0, "source": "t"},
    {"id": "p1", "messages": P1, "source": "t"},
    {"id": "p2", "messages": P2, "source": "t"},
]


def pairwise_tables() -> dict:
    return {"pairs": PAIRS, "judgments": JUDGMENTS, "generations": [generation(g) for g in TEXTS], "prompts": PROMPTS}


def ranked_tables() -> dict:
    """A listwise/pointwise version: rankings (one failed) and feedback rows."""
    ranking = {
        "prompt_id": "p0",
        "prompt": P0,
        "response_ids": ["p0/x/1", "p0/x/0", "p0/x/2"],
        "responses": ["B", "A", "C"],
        "policies": ["x", "x", "x"],
        "scores": [0.9, 0.9, 0.1],
        "ranks": [1, 1, 3],
        "judge": "listwise",
        "agreement": 0.5,
        "error": None,
    }
    failed = {
        **ranking,
        "prompt_id": "p1",
        "prompt": P1,
        "response_ids": [],
        "responses": [],
        "policies": [],
        "scores": [],
        "ranks": [],
        "error": "judge failed",
    }
    feedback = [
        {
            "prompt_id": "p0",
            "response_id": "p0/x/0",
            "prompt": P0,
            "completion": [{"role": "assistant", "content": "A"}],
            "policy": "x",
            "score": 4.0,
            "label": True,
        },
        {
            "prompt_id": "p0",
            "response_id": "p0/x/2",
            "prompt": P0,
            "completion": [{"role": "assistant", "content": "C"}],
            "policy": "x",
            "score": None,
            "label": False,
        },
    ]
    return {**pairwise_tables(), "rankings": [ranking, failed], "feedback": feedback}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def pairwise(store):
    return commit_tables(store, "crafted", pairwise_tables(), MANIFEST)[0]


@pytest.fixture(scope="module")
def ranked(store):
    return commit_tables(store, "ranked", ranked_tables(), {**MANIFEST, "judge": {"type": "listwise"}})[0]


@pytest.fixture(scope="module")
def old_version(store):
    """A version written before the prompts table existed."""
    version_id = commit_tables(store, "old", {"pairs": PAIRS[:1]}, MANIFEST)[0]
    (version_path(store, version_id) / "prompts.parquet").unlink()
    return version_id


def assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_dpo_and_rm_rows_conversational_keep_soft_labels_and_provenance(store, pairwise):
    for fmt in ("dpo", "rm"):
        rows = format_rows(store, pairwise, fmt)
        assert [r["chosen_id"] for r in rows] == ["p0/smol/0", "p0/big/0", "p1/smol/0"]
        first = rows[0]
        assert list(first)[:3] == ["prompt", "chosen", "rejected"]
        assert (
            first["prompt"] == P0
            and first["chosen"] == assistant("Hello!")
            and first["rejected"] == assistant("Hi there.")
        )
        assert (
            first["p_chosen"] == 0.8 and first["margin"] == pytest.approx(0.6) and first["rejected_policy"] == "smol"
        )
    assert preference_rows(store, pairwise)[0] == {
        "prompt": P0,
        "chosen": assistant("Hello!"),
        "rejected": assistant("Hi there."),
        "margin": pytest.approx(0.6),
        "p_chosen": 0.8,
    }


def test_dpo_rows_standard_render_plain_text(store, pairwise):
    row = format_rows(store, pairwise, "dpo", "standard")[0]
    assert row["prompt"] == "System: Be brief.\n\nUser: Say hi.\n\nAssistant:"
    assert row["chosen"] == " Hello!" and row["rejected"] == " Hi there."
    assert row["prompt_id"] == "p0" and row["p_chosen"] == 0.8


def test_kto_from_pairs_is_unpaired_and_interleaved(store, pairwise):
    rows = format_rows(store, pairwise, "kto")
    assert [(r["response_id"], r["label"]) for r in rows] == [
        ("p0/smol/0", True),
        ("p0/smol/1", False),
        ("p0/big/0", True),
        ("p0/smol/0", False),
        ("p1/smol/0", True),
        ("p1/smol/1", False),
    ]
    assert rows[1]["completion"] == assistant("Hi there.") and rows[1]["prompt"] == P0
    assert rows[0]["score"] == 0.8 and rows[1]["score"] == pytest.approx(0.2) and rows[3]["policy"] == "smol"
    standard = format_rows(store, pairwise, "kto", "standard")[2]
    assert standard["completion"] == " Greetings, friend." and standard["prompt"].endswith(
        "User: Say hi.\n\nAssistant:"
    )


def test_kto_from_feedback_when_present(store, ranked):
    rows = format_rows(store, ranked, "kto")
    assert rows == [
        {
            "prompt": P0,
            "completion": assistant("A"),
            "label": True,
            "prompt_id": "p0",
            "response_id": "p0/x/0",
            "policy": "x",
            "score": 4.0,
        },
        {
            "prompt": P0,
            "completion": assistant("C"),
            "label": False,
            "prompt_id": "p0",
            "response_id": "p0/x/2",
            "policy": "x",
            "score": None,
        },
    ]


def test_sft_from_pairs_takes_highest_mean_p(store, pairwise):
    rows = format_rows(store, pairwise, "sft")
    # p0: smol/0 wins 0.8 and loses 0.3 (mean 0.55); big/0 wins 0.7 -> big/0
    assert [(r["prompt_id"], r["response_id"], r["completion"]) for r in rows] == [
        ("p0", "p0/big/0", assistant("Greetings, friend.")),
        ("p1", "p1/smol/0", assistant("Blue.")),
    ]
    assert rows[0]["score"] == pytest.approx(0.7) and rows[0]["prompt"] == P0
    assert format_rows(store, pairwise, "sft", "standard")[1] == {
        "prompt": "User: Name a colour.\n\nAssistant:",
        "completion": " Blue.",
        "prompt_id": "p1",
        "response_id": "p1/smol/0",
        "policy": "smol",
        "score": pytest.approx(0.9),
    }


X_TEXTS = {"p0/x/0": "A", "p0/x/1": "B", "p0/x/2": "C"}


def ranked_with_pairs(store, name: str, kept: list[tuple[str, str]]) -> str:
    """The ranked version with only the listed (chosen, rejected) pairs of its ranking kept."""
    tables = {**ranked_tables(), "pairs": [pair(P0, a, b, 0.9, X_TEXTS) for a, b in kept]}
    return commit_tables(store, name, tables, {**MANIFEST, "judge": {"type": "listwise"}})[0]


def test_sft_from_rankings_breaks_ties_by_id_and_skips_failed(store):
    both = ranked_with_pairs(store, "ranked-both", [("p0/x/0", "p0/x/2"), ("p0/x/1", "p0/x/2")])
    rows = format_rows(store, both, "sft")
    assert [(r["prompt_id"], r["response_id"], r["completion"], r["score"]) for r in rows] == [
        ("p0", "p0/x/0", assistant("A"), 0.9)
    ]


def test_sft_from_rankings_takes_the_rank_1_response_whose_kept_pair_it_won(store):
    """Issue 23, item 10: x/0 and x/1 share rank 1, but only x/1's pair survived the filters; with
    no kept pair won by a rank-1 response the prompt gives no SFT row at all."""
    one = ranked_with_pairs(store, "ranked-one", [("p0/x/1", "p0/x/2")])
    assert [(r["response_id"], r["score"]) for r in format_rows(store, one, "sft")] == [("p0/x/1", 0.9)]
    lower = ranked_with_pairs(store, "ranked-lower", [("p0/x/2", "p0/x/0")])  # only a rank-3 response's win survived
    assert format_rows(store, lower, "sft") == []


def test_sft_rows_come_only_from_judgments_that_survived_the_filters(store, tmp_path):
    """Issue 23, item 10, on a version like the pipeline's: the pairwise judge's `rankings` table is made
    from every judgment, kept or dropped; the SFT rows and their scores come from the kept pairs only,
    and the card says so and counts the judged prompts left out."""
    judgments = [
        judgment("p0/smol/0", "p0/smol/1", 0.8),
        judgment("p0/smol/0", "p0/big/0", 0.3),
        judgment("p0/smol/1", "p0/big/0", 0.95),  # dropped (inconsistent): it alone would make smol/1 the best of p0
        judgment("p1/smol/0", "p1/smol/1", 0.9),
        judgment("p2/smol/0", "p2/smol/1", 0.5),  # dropped (a tie): p2 has no kept pair
    ]
    generations = [generation(g) for g in TEXTS]
    rankings = rankings_from_judgments(judgments, generations, PROMPTS, [])
    assert [r["prompt_id"] for r in rankings] == ["p0", "p1", "p2"]
    assert rankings[0]["response_ids"][rankings[0]["ranks"].index(1)] == "p0/smol/1"  # the best over every judgment
    tables = {
        "pairs": PAIRS,
        "judgments": judgments,
        "generations": generations,
        "prompts": PROMPTS,
        "rankings": rankings,
    }
    version = commit_tables(store, "filtered", tables, MANIFEST)[0]

    rows = format_rows(store, version, "sft")
    assert [(r["prompt_id"], r["response_id"], r["score"]) for r in rows] == [
        ("p0", "p0/big/0", pytest.approx(0.7)),
        ("p1", "p1/smol/0", pytest.approx(0.9)),
    ]
    card = (export_version(store, version, "sft", tmp_path / "sft") / "README.md").read_text()
    assert "only from the judgments that survived the filters" in card
    assert "2 of the 3 judged prompts give a row; 1 has no kept pair" in card


def test_prompts_format_from_prompts_table_and_from_pairs_for_old_versions(store, pairwise, old_version):
    assert format_rows(store, pairwise, "prompts") == [
        {"prompt": P0, "prompt_id": "p0"},
        {"prompt": P1, "prompt_id": "p1"},
        {"prompt": P2, "prompt_id": "p2"},
    ]
    assert format_rows(store, pairwise, "prompts", "standard")[2] == {
        "prompt": "User: What is 2+2?\n\nAssistant:",
        "prompt_id": "p2",
    }
    assert format_rows(store, old_version, "prompts") == [{"prompt": P0, "prompt_id": "p0"}]


def test_listwise_from_pairwise_judgments(store, pairwise):
    rows = format_rows(store, pairwise, "listwise")
    assert [r["prompt_id"] for r in rows] == ["p0", "p1"]  # p2 was never judged
    p0 = rows[0]
    assert p0["response_ids"] == ["p0/big/0", "p0/smol/0", "p0/smol/1"]
    assert p0["scores"] == pytest.approx([(0.7 + 0.45) / 2, (0.8 + 0.3) / 2, (0.2 + 0.55) / 2])
    assert p0["ranks"] == [1, 2, 3] and p0["judge"] == "pairwise" and p0["agreement"] is None
    assert p0["responses"] == [assistant("Greetings, friend."), assistant("Hello!"), assistant("Hi there.")]
    assert p0["policies"] == ["big", "smol", "smol"]
    assert format_rows(store, pairwise, "listwise", "standard")[1]["responses"] == [" Blue.", " Red."]


def test_listwise_from_rankings_keeps_ties(store, ranked):
    rows = format_rows(store, ranked, "listwise")
    assert (
        len(rows) == 1
        and rows[0]["ranks"] == [1, 1, 3]
        and rows[0]["agreement"] == 0.5
        and rows[0]["judge"] == "listwise"
    )
    assert rows[0]["responses"] == [assistant("B"), assistant("A"), assistant("C")]


def test_rankings_from_judgments_skips_failed_judgments_and_single_responses():
    generations = [generation(g) for g in ("p1/smol/0", "p1/smol/1", "p0/smol/0", "p0/smol/1")]
    judgments = [judgment("p1/smol/0", "p1/smol/1", None, error="timeout"), judgment("p0/smol/0", "p0/smol/1", 0.5)]
    rows = rankings_from_judgments(judgments, generations, PROMPTS, [])
    assert [(r["prompt_id"], r["scores"], r["ranks"]) for r in rows] == [("p0", [0.5, 0.5], [1, 1])]


def test_format_dataset_is_the_rows_as_a_datasets_dataset(store, pairwise, ranked):
    pytest.importorskip("datasets")
    for fmt in FORMATS:
        assert format_dataset(store, pairwise, fmt, "standard").to_list() == format_rows(
            store, pairwise, fmt, "standard"
        )
    assert format_dataset(store, ranked, "kto")["score"] == [4.0, None]
    empty = commit_tables(store, "nopairs", {"prompts": PROMPTS}, MANIFEST)[0]
    with pytest.raises(StoreError, match="has no rows for format 'rm'"):
        format_dataset(store, empty, "rm")


def test_export_writes_parquet_and_card_and_load_dataset_reads_it(store, pairwise, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = export_version(store, pairwise, "dpo", tmp_path / "dpo")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["README.md", "data", DATA_FILE]
    assert pq.read_table(out / DATA_FILE).to_pylist() == format_rows(store, pairwise, "dpo")
    assert [p.name for p in tmp_path.iterdir()] == ["dpo"]  # no temporary folder left behind
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == 3 and loaded[0]["chosen"] == assistant("Hello!") and loaded[0]["p_chosen"] == 0.8


def test_reexport_to_the_same_folder_is_not_hidden_by_the_datasets_cache(store, pairwise, tmp_path):
    """`datasets` keys a local folder's cache on the card's configs, so the card names the data's sha256."""
    datasets = pytest.importorskip("datasets")
    cache = str(tmp_path / "cache")
    out = export_version(store, pairwise, "dpo", tmp_path / "out")
    assert isinstance(datasets.load_dataset(str(out), split="train", cache_dir=cache)[0]["prompt"], list)
    export_version(store, pairwise, "dpo", out, style="standard")
    assert datasets.load_dataset(str(out), split="train", cache_dir=cache)[0]["prompt"].startswith("System: Be brief.")


def test_every_format_exports(store, pairwise, tmp_path):
    for fmt in FORMATS:
        for style in ("conversational", "standard"):
            out = export_version(store, pairwise, fmt, tmp_path / f"{fmt}-{style}", style=style)
            assert pq.read_metadata(out / DATA_FILE).num_rows == len(format_rows(store, pairwise, fmt, style)) > 0
            assert f"format: {fmt}" in (out / "README.md").read_text()


def test_export_replaces_an_earlier_export_but_refuses_other_folders(store, pairwise, ranked, tmp_path):
    out = export_version(store, pairwise, "dpo", tmp_path / "out")
    export_version(store, ranked, "kto", out)  # an earlier rlaif export is replaced
    assert pq.read_metadata(out / DATA_FILE).num_rows == 2 and "format: kto" in (out / "README.md").read_text()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty and is not an earlier rlaif export"):
        export_version(store, pairwise, "dpo", out)
    assert (out / "notes.txt").read_text() == "mine" and "format: kto" in (out / "README.md").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_version(store, pairwise, "sft", empty) == empty and (empty / DATA_FILE).is_file()
    with pytest.raises(StoreError, match="is not a folder"):
        export_version(store, pairwise, "dpo", out / "notes.txt")


def test_export_errors_name_the_problem(store, pairwise, tmp_path):
    with pytest.raises(StoreError, match="unknown export format 'ppo' - use one of: dpo, rm, kto"):
        export_version(store, pairwise, "ppo", tmp_path / "x")
    with pytest.raises(StoreError, match="unknown export style 'chat'"):
        export_version(store, pairwise, "dpo", tmp_path / "x", style="chat")
    with pytest.raises(StoreError, match="no version 'nope-1'"):
        export_version(store, "nope-1", "dpo", tmp_path / "x")
    empty = commit_tables(store, "empty", {"prompts": PROMPTS}, MANIFEST)[0]
    with pytest.raises(StoreError, match=f"version {empty} has no rows for format 'dpo'"):
        export_version(store, empty, "dpo", tmp_path / "x")
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []


def cli(*args: str) -> subprocess.CompletedProcess:
    return run_cli("datasets", "export", *args, env={"COLUMNS": "200"})


def test_cli_export(store, pairwise, tmp_path):
    done = cli(
        pairwise,
        "--format",
        "kto",
        "--style",
        "standard",
        "--out",
        str(tmp_path / "kto"),
        "--store",
        str(store),
        "--license",
        "cc-by-4.0",
    )
    assert done.returncode == 0, done.stderr
    assert f"exported 6 kto rows (standard) of {pairwise}" in done.stdout
    card = (tmp_path / "kto" / "README.md").read_text()
    assert card.startswith("---\nlicense: cc-by-4.0\n")
    unknown_format = cli(pairwise, "--format", "ppo", "--out", str(tmp_path / "y"), "--store", str(store))
    assert unknown_format.returncode == 2 and "unknown export format 'ppo'" in unknown_format.stderr
    unknown_version = cli("nope-1", "--format", "dpo", "--out", str(tmp_path / "y"), "--store", str(store))
    assert unknown_version.returncode == 2 and "no version 'nope-1'" in unknown_version.stderr
    assert not (tmp_path / "y").exists()
    helptext = cli("--help")
    assert helptext.returncode == 0 and "Example:" in helptext.stdout
