"""Judge quality travels with the data: `judge.gold` pairs are judged during the run and the
figures land in the manifest's `eval`, the summary, the card and the report, with warnings."""

from __future__ import annotations

import json
import re

import pytest

from rlaif.calls.cache import CallStats
from rlaif.config.recipe import load_recipe, parse_recipe
from rlaif.judges.measure import quality_warnings
from rlaif.pipeline.runner import run_recipe
from rlaif.pipeline.summary import summary_lines
from rlaif.publish.export import export_version
from rlaif.publish.report import write_report
from rlaif.store.versions import load_manifest
from tests.badinput import run_cli, write_recipe
from tests.conftest import MT_BENCH_GOLD, ROOT, shared_data, write_prompts
from tests.det_server import DetServer


def gold_file(path, rows: int = 12):
    """Gold pairs whose chosen answer is always the longer one: "pick the longer" agrees on all."""
    lines = [
        {
            "prompt": [{"role": "user", "content": f"Gold question {i}?"}],
            "chosen": f"A full and careful answer to question {i}, with reasons.",
            "rejected": f"No {i}.",
        }
        for i in range(rows)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def det_recipe(tmp_path, base_url: str, **judge):
    prompts = write_prompts(tmp_path / "prompts.jsonl", [f"Question {i}: what is {i} + 1?" for i in range(4)])
    endpoint = {"backend": "openai", "base_url": base_url, "model": "det"}
    return parse_recipe(
        {
            "name": "gold",
            "prompts": {"path": str(prompts)},
            "samples_per_prompt": 1,
            "policies": [
                {"name": n, **endpoint, "params": {"temperature": t}} for n, t in (("cold", 0.1), ("hot", 0.9))
            ],
            "judge": {**endpoint, **judge},
            "filters": {"consistency": False, "min_margin": 0.0},
        }
    )


def test_gold_figures_reach_the_manifest_summary_card_and_report(tmp_path):
    gold = gold_file(tmp_path / "gold.jsonl")
    with DetServer() as server:
        version, _, manifest, run = run_recipe(
            det_recipe(tmp_path, server.base_url, gold=str(gold), gold_limit=10), tmp_path / "store"
        )
    quality = load_manifest(tmp_path / "store", version)["eval"]
    assert quality["n"] == 10 and quality["baseline_longer"] == 1.0 and quality["gold"]["rows"] == 10
    assert quality["calls"]["live"] == 20  # 10 gold pairs x 2 orders, through the request cache
    assert any('does not beat "pick the longer' in w for w in quality["warnings"])  # nothing beats 1.0
    lines = summary_lines(version, True, manifest, run.stats)
    assert re.search(
        r'judge on 10 gold pairs: agreement [0-9.]+ \(95% [0-9.]+-[0-9.]+\), "pick the longer" 1\.00; WARNING',
        "\n".join(lines),
    )
    card = (export_version(tmp_path / "store", version, "dpo", tmp_path / "export") / "README.md").read_text()
    assert "**Warning:** the judge does not beat" in card and "agreement of the rule 'the longer one wins'" in card
    report = write_report(tmp_path / "store", version).read_text()
    assert "Judge on human-labelled gold pairs" in report and "does not beat" in report


def test_without_gold_nothing_is_measured_or_said(tmp_path):
    with DetServer() as server:
        version, _, manifest, _ = run_recipe(det_recipe(tmp_path, server.base_url), tmp_path / "store")
    assert "eval" not in manifest and not [
        line for line in summary_lines(version, True, manifest, CallStats()) if "gold pairs" in line
    ]


def test_warnings_name_the_length_rule_and_low_consistency():
    assert (
        quality_warnings({"n": 40, "agreement": 0.9, "baseline_longer": 0.6, "position_consistency_debiased": 0.9})
        == []
    )
    assert (
        len(
            quality_warnings({"n": 40, "agreement": 0.5, "baseline_longer": 0.6, "position_consistency_debiased": 0.3})
        )
        == 2
    )


STRONG = {"n": 40, "agreement": 0.88, "agreement_ci95": [0.74, 0.95], "baseline_longer": 0.5}


def test_order_consistency_above_one_half_but_not_significantly_so_is_flagged():
    """Issue 23 item 7: 0.5 is what an uninformative judge scores after debiasing. 22 of 40 pairs
    (0.55) is chance (one-sided binomial test against 0.5: p = 0.32); 30 of 40 (p = 0.001) is not."""
    warned = quality_warnings({**STRONG, "position_consistency_debiased": 0.55})
    assert any("not significantly above chance" in w and "22 of 40 pairs" in w for w in warned), warned
    assert quality_warnings({**STRONG, "position_consistency_debiased": 0.75}) == []
    assert quality_warnings({**STRONG, "position_consistency_debiased": 0.625}) != []  # 25 of 40: p = 0.077
    assert (
        quality_warnings({**STRONG, "position_consistency_debiased": 0.65}) == []
    )  # 26 of 40: p = 0.040, the first below 0.05


def test_the_binomial_tail_is_scipys_one_sided_binomtest():
    from rlaif.judges.stats import binomial_tail

    stats = pytest.importorskip("scipy.stats")
    for k, n in [(22, 40), (26, 40), (27, 40), (0, 5), (5, 5), (0, 0), (470, 894), (130, 200)]:
        reference = stats.binomtest(k, n, 0.5, alternative="greater").pvalue if n else 1.0
        assert binomial_tail(k, n) == pytest.approx(reference, rel=1e-9, abs=1e-300), (k, n)


def test_an_agreement_interval_that_holds_the_longer_rule_is_flagged():
    """Above "pick the longer" but within chance of it: 0.62 (95% 0.47-0.76) on 40 rows against 0.60."""
    consistent = {"n": 40, "position_consistency_debiased": 0.9}
    warned = quality_warnings(
        {**consistent, "agreement": 0.62, "agreement_ci95": [0.47, 0.76], "baseline_longer": 0.6}
    )
    assert warned == [
        'the judge does not beat "pick the longer response" on the gold pairs beyond chance: agreement 0.62 (95% 0.47-0.76) includes the rule\'s 0.60'
    ]
    from_n = quality_warnings(
        {**consistent, "agreement": 0.625, "baseline_longer": 0.6}
    )  # no interval given: Wilson's from n
    assert from_n == [
        'the judge does not beat "pick the longer response" on the gold pairs beyond chance: agreement 0.62 (95% 0.47-0.76) includes the rule\'s 0.60'
    ]
    assert (
        quality_warnings({**consistent, "agreement": 0.88, "agreement_ci95": [0.74, 0.95], "baseline_longer": 0.5})
        == []
    )


def test_a_judge_that_failed_every_gold_pair_is_one_warning_not_a_zero():
    assert quality_warnings(
        {"n": 0, "agreement": None, "baseline_longer": None, "position_consistency_debiased": None}
    ) == ["the judge failed on every gold pair: no agreement could be measured"]


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child process uses the session's Prefect server
def test_the_embedded_judge_on_mt_bench_gold_is_flagged_on_both_counts(tmp_path):
    """Issue 23 item 7, on the real 135M judge: its agreement interval holds the "pick the longer"
    rule and its order consistency is not significantly above chance; the summary and the card say both."""
    gold = shared_data(MT_BENCH_GOLD)
    recipe = write_recipe(
        tmp_path,
        {
            "name": "demo-gold",
            "prompts": {"path": str(ROOT / "data/prompts.jsonl")},
            "policies": [{"name": "smol", "model": "smollm2-135m", "params": {"max_tokens": 16}}],
            "judge": {"model": "smollm2-135m", "gold": str(gold), "gold_limit": 30},
        },
    )
    store = tmp_path / "store"
    result = run_cli("run", str(recipe), "--store", str(store), "--limit", "2", timeout=900, process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.search(r"judge on 30 gold pairs: .*", result.stdout)
    assert summary, result.stdout
    assert (
        'WARNING: the judge does not beat "pick the longer response" on the gold pairs beyond chance' in summary[0]
    ), summary[0]
    assert re.search(
        r"order consistency after debiasing is not significantly above chance: \d+ of 30 pairs", summary[0]
    ), summary[0]
    version = re.search(r"version: (\S+)", result.stdout)[1]
    card = (
        export_version(store, version, "prompts", tmp_path / "export") / "README.md"
    ).read_text()  # 2 prompts may keep no pair
    assert (
        "**Warning:** the judge does not beat" in card
        and "**Warning:** order consistency after debiasing is not significantly above chance" in card
    )
    assert "agreement with the human label" in card and "agreement of the rule 'the longer one wins'" in card


@pytest.mark.slow
@pytest.mark.judges
def test_the_1_5b_judge_on_pandalm_is_not_flagged_for_agreement(tmp_path):
    """The first built-in judge above "pick the longer": 0.88 (0.74-0.95) on the first 40 PandaLM rows
    against 0.50 (docs/judges.md). Needs `make judges`; about 10 minutes on 2 CPU cores."""
    from rlaif.core.errors import BackendError
    from rlaif.judges.evaluate import evaluate_judge
    from rlaif.weights import parts as model_parts

    gold = shared_data(MT_BENCH_GOLD.parents[1] / "pandalm-human-sample" / "pairs.jsonl")
    try:
        model_parts.check_installed(model_parts.QWEN_CODER_15B)
    except BackendError as exc:
        pytest.skip(f"the qwen2.5-coder-1.5b parts are not installed (run `make judges`): {exc}")
    result = evaluate_judge(load_recipe(ROOT / "recipes/judge-qwen1.5b.yaml"), gold, tmp_path / "store", limit=40)
    warnings = quality_warnings(result)
    assert result["agreement_ci95"][0] > result["baseline_longer"], result
    assert not [w for w in warnings if "pick the longer" in w], warnings
