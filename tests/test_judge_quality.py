"""Judge quality travels with the data: `judge.gold` pairs are judged during the run and the
figures land in the manifest's `eval`, the summary, the card and the report, with warnings."""

from __future__ import annotations

import json
import re

import pytest

from rlaif.cache import CallStats
from rlaif.judge_quality import quality_warnings
from rlaif.recipe import parse_recipe
from rlaif.report import write_report
from rlaif.runner import run_recipe
from rlaif.store.export import export_version
from rlaif.store.versions import load_manifest
from rlaif.summary import summary_lines
from tests.badinput import run_cli, write_recipe
from tests.conftest import MT_BENCH_GOLD, ROOT, shared_data, write_prompts
from tests.det_server import DetServer


def gold_file(path, rows: int = 12):
    """Gold pairs whose chosen answer is always the longer one: "pick the longer" agrees on all."""
    lines = [{"prompt": [{"role": "user", "content": f"Gold question {i}?"}], "chosen": f"A full and careful answer to question {i}, with reasons.", "rejected": f"No {i}."} for i in range(rows)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def det_recipe(tmp_path, base_url: str, **judge):
    prompts = write_prompts(tmp_path / "prompts.jsonl", [f"Question {i}: what is {i} + 1?" for i in range(4)])
    endpoint = {"backend": "openai", "base_url": base_url, "model": "det"}
    return parse_recipe({
        "name": "gold", "prompts": {"path": str(prompts)}, "samples_per_prompt": 1,
        "policies": [{"name": n, **endpoint, "params": {"temperature": t}} for n, t in (("cold", 0.1), ("hot", 0.9))],
        "judge": {**endpoint, **judge}, "filters": {"consistency": False, "min_margin": 0.0},
    })


def test_gold_figures_reach_the_manifest_summary_card_and_report(tmp_path):
    gold = gold_file(tmp_path / "gold.jsonl")
    with DetServer() as server:
        version, _, manifest, run = run_recipe(det_recipe(tmp_path, server.base_url, gold=str(gold), gold_limit=10), tmp_path / "store")
    quality = load_manifest(tmp_path / "store", version)["eval"]
    assert quality["n"] == 10 and quality["baseline_longer"] == 1.0 and quality["gold"]["rows"] == 10
    assert quality["calls"]["live"] == 20  # 10 gold pairs x 2 orders, through the request cache
    assert any('does not beat "pick the longer' in w for w in quality["warnings"])  # nothing beats 1.0
    lines = summary_lines(version, True, manifest, run.stats)
    assert re.search(r'judge on 10 gold pairs: agreement [0-9.]+ \(95% [0-9.]+-[0-9.]+\), "pick the longer" 1\.00; WARNING', "\n".join(lines))
    card = (export_version(tmp_path / "store", version, "dpo", tmp_path / "export") / "README.md").read_text()
    assert "**Warning:** the judge does not beat" in card and "agreement of the rule 'the longer one wins'" in card
    report = write_report(tmp_path / "store", version).read_text()
    assert "Judge on human-labelled gold pairs" in report and "does not beat" in report


def test_without_gold_nothing_is_measured_or_said(tmp_path):
    with DetServer() as server:
        version, _, manifest, _ = run_recipe(det_recipe(tmp_path, server.base_url), tmp_path / "store")
    assert "eval" not in manifest and not [line for line in summary_lines(version, True, manifest, CallStats()) if "gold pairs" in line]


def test_warnings_name_the_length_rule_and_low_consistency():
    assert quality_warnings({"agreement": 0.7, "baseline_longer": 0.6, "position_consistency_debiased": 0.9}) == []
    assert len(quality_warnings({"agreement": 0.5, "baseline_longer": 0.6, "position_consistency_debiased": 0.3})) == 2


@pytest.mark.slow
def test_the_demo_judge_on_mt_bench_gold_is_flagged_on_the_card(tmp_path):
    gold = shared_data(MT_BENCH_GOLD)
    recipe = write_recipe(tmp_path, {
        "name": "demo-gold",
        "prompts": {"path": str(ROOT / "data/prompts.jsonl")},
        "policies": [{"name": "smol", "model": "smollm2-135m", "params": {"max_tokens": 16}}],
        "judge": {"model": "smollm2-135m", "gold": str(gold), "gold_limit": 30},
    })
    store = tmp_path / "store"
    result = run_cli("run", str(recipe), "--store", str(store), "--limit", "2", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r'judge on 30 gold pairs: agreement .*"pick the longer" 0\.\d\d; WARNING: the judge does not beat', result.stdout), result.stdout
    version = re.search(r"version: (\S+)", result.stdout)[1]
    card = (export_version(store, version, "prompts", tmp_path / "export") / "README.md").read_text()  # 2 prompts may keep no pair
    assert "**Warning:** the judge does not beat" in card
    assert "agreement with the human label" in card and "agreement of the rule 'the longer one wins'" in card
