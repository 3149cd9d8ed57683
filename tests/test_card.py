"""The dataset card: front matter the Hub and `datasets` read, every section from the manifest,
license precedence, human-agreement figures, no secrets."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from rlaif.core.errors import StoreError
from rlaif.publish.dataset_card import render_card
from rlaif.publish.export import DATA_FILE, export_version, load_evaluation
from rlaif.store.versions import commit_tables, load_manifest, version_path
from tests.test_export import MANIFEST, pairwise_tables

EVAL = {
    "n": 100,
    "agreement": 0.6123,
    "kappa": 0.21,
    "position_consistency": 0.04,
    "position_consistency_debiased": 0.52,
    "prefers_longer": 0.71,
    "baseline_longer": 0.68,
    "ece": 0.12,
    "failures": 0,
    "gold": {"path": "mt-bench.jsonl", "sha256": "ef" * 32, "rows": 100},
    "outcomes": [{"row": 1}],
    "judge": {"model": "smollm2-135m"},
}


def front(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card[4 : card.index("\n---\n", 4)])


def section(card: str, title: str) -> str:
    start = card.index(f"## {title}\n")
    end = card.find("\n## ", start + 1)
    return card[start : end if end > 0 else None]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("cards")


@pytest.fixture(scope="module")
def version(store):
    return commit_tables(store, "crafted", pairwise_tables(), MANIFEST)[0]


def card_of(store, version_id, **kwargs) -> str:
    return render_card(
        load_manifest(store, version_id),
        "dpo",
        "conversational",
        3,
        ["prompt", "chosen", "rejected", "margin"],
        "pairs",
        **kwargs,
    )


def test_front_matter_has_license_tags_and_configs(store, version):
    meta = front(card_of(store, version))
    assert meta["license"] == "other"
    assert {"rlaif", "dpo"} <= set(meta["tags"])
    [config] = meta["configs"]
    assert config["config_name"] == "default" and config["data_files"] == [
        {"split": "train", "path": "data/train-*.parquet"}
    ]
    assert meta["rlaif"] == {
        "version": version,
        "format": "dpo",
        "style": "conversational",
        "rows": 3,
        "data_sha256": None,
        "package_version": "0.1.0",
    }
    assert meta["size_categories"] == ["n<1K"]


def test_license_comes_from_argument_then_recipe_then_other(store, version):
    assert "No license was given" in section(card_of(store, version), "License")
    assert front(card_of(store, version, license="mit"))["license"] == "mit"
    licensed = commit_tables(
        store, "licensed", pairwise_tables(), {**MANIFEST, "recipe": {**MANIFEST["recipe"], "license": "cc-by-4.0"}}
    )[0]
    card = card_of(store, licensed)
    assert front(card)["license"] == "cc-by-4.0" and "No license was given" not in card


def test_body_reports_recipe_models_templates_counts_and_judge_quality(store, version):
    card = card_of(store, version)
    assert "| pairwise_judge.j2 | `" + "cd" * 32 + "` |" in section(card, "Templates")
    models = section(card, "Models")
    assert "| policy `big` | big-model (openai) |" in models and "| judge | smollm2-135m (transformers) |" in models
    counts = section(card, "Counts")
    nested = {
        **MANIFEST,
        "counts": {**MANIFEST["counts"], "prompts_dropped": {"duplicate": 2}, "feedback": {"good": 1, "bad": 0}},
    }
    nested_counts = section(card_of(store, commit_tables(store, "nested", pairwise_tables(), nested)[0]), "Counts")
    assert "| prompts_dropped.duplicate | 2 |" in nested_counts and "| feedback.bad | 0 |" in nested_counts
    assert (
        "| identical | 1 |" in counts
        and "| inconsistent | 1 |" in counts
        and "| kept | 3 |" in counts
        and "| calls live | 15 |" in counts
    )
    judge = section(card, "Judge quality")
    assert "(beta) | 0.8123 |" in judge and "| order consistency, raw (same winner in both orders) | 0.25 |" in judge
    assert "| order consistency, position bias removed | 0.75 |" in judge and "longer one | 0.6667 |" in judge
    assert "No human-agreement evaluation" in judge
    recipe = section(card, "Recipe")
    assert yaml.safe_load(recipe.split("```yaml\n")[1].split("```")[0]) == MANIFEST["recipe"]
    assert "| `margin` | \\|2 p_chosen - 1\\|: 0 is a tie" in section(card, "Columns")
    for key in (
        "lee2023rlaif",
        "rafailov2023dpo",
        "ethayarajh2024kto",
        "cui2023ultrafeedback",
        "bai2022constitutional",
    ):
        assert key in section(card, "Citation")


def test_human_agreement_from_the_manifest_or_an_eval_file(store, version, tmp_path):
    evaluated = commit_tables(store, "evaluated", pairwise_tables(), {**MANIFEST, "eval": EVAL})[0]
    judge = section(card_of(store, evaluated), "Judge quality")
    assert (
        "| agreement with the human label | 0.6123 |" in judge
        and "| Cohen's kappa with the human label | 0.21 |" in judge
    )
    assert (
        "| agreement of the rule 'the longer one wins' | 0.68 |" in judge and "| gold.path | mt-bench.jsonl |" in judge
    )
    assert "outcomes" not in judge and "No human-agreement" not in judge
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(EVAL))
    out = export_version(store, version, "dpo", tmp_path / "out", evaluation=load_evaluation(path))
    assert "| agreement with the human label | 0.6123 |" in (out / "README.md").read_text()
    path.write_text("[1, 2")
    with pytest.raises(StoreError, match="eval.json: cannot read the evaluation"):
        load_evaluation(path)


def test_no_secret_reaches_the_card(store, monkeypatch):
    monkeypatch.setenv("RLAIF_TEST_KEY", "sk-verysecret-123")
    monkeypatch.setenv("HF_TOKEN", "hf_secrettoken456")
    leaky = {**MANIFEST, "recipe": {**MANIFEST["recipe"], "note": "sk-verysecret-123 and hf_secrettoken456"}}
    version_id = commit_tables(store, "leaky", pairwise_tables(), leaky)[0]
    card = card_of(store, version_id)
    assert "sk-verysecret-123" not in card and "hf_secrettoken456" not in card and "note: *** and ***" in card


def test_load_dataset_reads_only_the_export_when_the_folder_holds_other_parquet(store, version, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = export_version(store, version, "kto", tmp_path / "hub")
    (out / "rlaif").mkdir()  # what a Hub upload adds beside the export: the raw version tables
    for table in ("pairs", "generations", "judgments"):
        shutil.copy(version_path(store, version) / f"{table}.parquet", out / "rlaif" / f"{table}.parquet")
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == ["train"] and loaded["train"].num_rows == 6
    assert set(loaded["train"].column_names) == {
        "prompt",
        "completion",
        "label",
        "prompt_id",
        "response_id",
        "policy",
        "score",
    }
    assert (out / DATA_FILE).is_file()


def test_card_is_a_hub_dataset_card_with_the_same_front_matter_keys(store, version):
    from huggingface_hub import DatasetCard

    card = DatasetCard(card_of(store, version, data_sha256="ab" * 32))
    meta = card.data.to_dict()
    assert set(meta) == {"license", "pretty_name", "tags", "task_categories", "size_categories", "configs", "rlaif"}
    assert meta["configs"][0]["description"].endswith(f"of {version}, data sha256 {'ab' * 32}")
    assert card.text.lstrip().startswith("# crafted: `dpo` export (conversational)")
    titles = re.findall(r"^## (.+)$", card.text, flags=re.M)
    assert titles == [
        "Loading",
        "Columns",
        "Models",
        "Templates",
        "Counts",
        "Judge quality",
        "Lineage",
        "Recipe",
        "License",
        "Citation",
    ]


def test_gold_warnings_stand_above_the_agreement_figures(store):
    warned = {
        **EVAL,
        "warnings": ['the judge does not beat "pick the longer response" on the gold pairs (agreement 0.61 vs 0.68)'],
    }
    version_id = commit_tables(store, "warned", pairwise_tables(), {**MANIFEST, "eval": warned})[0]
    judge = section(card_of(store, version_id), "Judge quality")
    warning = judge.index(
        '**Warning:** the judge does not beat "pick the longer response" on the gold pairs (agreement 0.61 vs 0.68).'
    )
    assert warning < judge.index("| agreement with the human label | 0.6123 |")
    assert "| warnings |" not in judge


def test_the_layout_is_the_template_file(store, version, tmp_path, monkeypatch):
    from rlaif.publish import dataset_card as card

    assert card.TEMPLATE.is_file() and card.TEMPLATE.name == "dataset_card.md.j2"
    custom = tmp_path / "card.md.j2"
    custom.write_text("---\n{{ card_data }}\n---\n\n# {{ title }}: {{ n_rows }} rows, judge {{ judge_rows[0][1] }}\n")
    monkeypatch.setattr(card, "TEMPLATE", custom)
    text = card_of(store, version)
    assert front(text)["license"] == "other" and text.endswith("\n# crafted: 3 rows, judge pairwise\n")


def test_every_template_is_package_data():
    """A non-editable install must ship the card and report templates (pip install . --target DIR has them)."""
    import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "rlaif.publish"
    ]
    folder = root / "rlaif" / "publish"
    shipped = sorted(str(p.relative_to(folder)) for p in (folder / "templates").iterdir())
    assert {
        "templates/dataset_card.md.j2",
        "templates/report.html.j2",
        "templates/model_card.md.j2",
        "templates/train_report.html.j2",
    } <= set(shipped)
    assert [name for name in shipped if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)] == []
