"""OpenRLHF and verl exports: the rows each framework's data loader reads, from a crafted version."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from rlaif.core.errors import StoreError
from rlaif.publish.export import DATA_FILE, export_version
from rlaif.store.formats import format_rows
from rlaif.store.versions import commit_tables
from tests.badinput import run_cli
from tests.test_export import MANIFEST, P0, P1, P2, PROMPTS, pairwise_tables


def assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def pairwise(store):
    return commit_tables(store, "crafted", pairwise_tables(), MANIFEST)[0]


def test_openrlhf_pairs_rows_are_reward_dataset_rows(store, pairwise):
    rows = format_rows(store, pairwise, "openrlhf-pairs")
    assert list(rows[0]) == [
        "prompt",
        "chosen",
        "rejected",
        "margin",
        "p_chosen",
        "prompt_id",
        "chosen_id",
        "rejected_id",
    ]
    assert [(r["prompt"], r["chosen"], r["rejected"], r["p_chosen"]) for r in rows] == [
        (P0, assistant("Hello!"), assistant("Hi there."), 0.8),
        (P0, assistant("Greetings, friend."), assistant("Hello!"), 0.7),
        (P1, assistant("Blue."), assistant("Red."), 0.9),
    ]
    standard = format_rows(store, pairwise, "openrlhf-pairs", "standard")
    assert (
        standard[0]["prompt"] == "System: Be brief.\n\nUser: Say hi.\n\nAssistant:"
        and standard[0]["chosen"] == " Hello!"
    )


def openrlhf_preprocess(data: dict, apply_chat_template) -> tuple[str, str, str, float]:
    """OpenRLHF's openrlhf/datasets/reward_dataset.py `preprocess_data` with --prompt_key and --apply_chat_template."""
    prompt = apply_chat_template(data["prompt"], tokenize=False, add_generation_prompt=True)
    chosen = apply_chat_template(data["prompt"] + data["chosen"], tokenize=False)[len(prompt) :]
    rejected = apply_chat_template(data["prompt"] + data["rejected"], tokenize=False)[len(prompt) :]
    return prompt, chosen, rejected, data["margin"] if data.get("margin") is not None else 0


@pytest.mark.slow
def test_openrlhf_export_loads_and_renders_with_a_chat_template(store, pairwise, tmp_path):
    datasets = pytest.importorskip("datasets")
    from transformers import AutoTokenizer

    from rlaif.weights.resolve import resolve_model

    out = export_version(store, pairwise, "openrlhf-pairs", tmp_path / "openrlhf")
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == 3 and "openrlhf" in (out / "README.md").read_text()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m"))
    prompt, chosen, rejected, margin = openrlhf_preprocess(loaded[2], tokenizer.apply_chat_template)
    assert prompt.endswith("<|im_start|>assistant\n") and "Name a colour." in prompt
    assert chosen == "Blue.<|im_end|>\n" and rejected == "Red.<|im_end|>\n" and margin == pytest.approx(0.8)


def test_verl_rl_rows_have_verls_layout_one_per_prompt(store, pairwise):
    rows = format_rows(store, pairwise, "verl-rl")
    assert [list(r) for r in rows] == [["data_source", "prompt", "ability", "reward_model", "extra_info"]] * 3
    assert [r["prompt"] for r in rows] == [P0, P1, P2]  # every prompt of the version, also one with no kept pair
    assert {r["data_source"] for r in rows} == {f"rlaif/{pairwise}"} and {r["ability"] for r in rows} == {"alignment"}
    # ground truth: the best response (highest mean P(win)): p0 "Hello!" wins 0.8 and loses 0.3 -> 0.55 < "Greetings" 0.7
    assert [r["reward_model"] for r in rows] == [
        {"style": "model", "ground_truth": "Greetings, friend."},
        {"style": "model", "ground_truth": "Blue."},
        {"style": "model", "ground_truth": ""},
    ]
    assert rows[1]["extra_info"] == {"split": "train", "index": 1, "prompt_id": "p1", "messages": P1}
    assert (
        format_rows(store, pairwise, "verl-rl", "standard") == rows
    )  # verl applies the chat template itself: messages in both styles


def test_verl_export_reads_as_verl_reads_it(store, pairwise, tmp_path):
    """verl's RLHFDataset: datasets.load_dataset("parquet", data_files=...)["train"], then row["prompt"] as messages."""
    datasets = pytest.importorskip("datasets")
    out = export_version(store, pairwise, "verl-rl", tmp_path / "verl")
    schema = pq.read_schema(out / DATA_FILE)
    assert schema.field("reward_model").type.names == ["style", "ground_truth"]
    assert schema.field("extra_info").type.names == ["split", "index", "prompt_id", "messages"]
    frame = datasets.load_dataset("parquet", data_files=str(out / DATA_FILE), cache_dir=str(tmp_path / "cache"))[
        "train"
    ]
    assert frame.num_rows == 3 and frame[0]["prompt"] == P0 and frame[2]["extra_info"]["messages"] == P2


def test_cli_exports_the_rl_formats(store, pairwise, tmp_path):
    for fmt in ("openrlhf-pairs", "verl-rl"):
        result = run_cli(
            "datasets", "export", pairwise, "--format", fmt, "--out", str(tmp_path / fmt), "--store", str(store)
        )
        assert result.returncode == 0, result.stderr
        assert f"exported {3} {fmt} rows" in result.stdout
        assert f"format: {fmt}" in (tmp_path / fmt / "README.md").read_text()


def test_a_version_without_pairs_has_no_openrlhf_rows(store, tmp_path):
    empty = commit_tables(store, "nopairs", {"prompts": PROMPTS}, MANIFEST)[0]
    with pytest.raises(StoreError, match="no rows for format 'openrlhf-pairs'"):
        export_version(store, empty, "openrlhf-pairs", tmp_path / "x")
    assert len(format_rows(store, empty, "verl-rl")) == 3  # prompts alone are enough for RL
