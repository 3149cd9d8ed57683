"""The dataset card (README.md of an export), generated from a version's manifest with
huggingface_hub's card API: the front matter is a `DatasetCardData`, the text is the Jinja
template `rlaif/publish/templates/dataset_card.md.j2` rendered by `DatasetCard.from_template`; this
module computes what the template shows (every table row, its cells escaped for Markdown).

YAML front matter for the Hugging Face Hub (license, tags, a `configs` entry that points
`datasets.load_dataset` at the export's Parquet files only), then: what the rows are and how to
load them, the recipe, models, templates with sha256, counts and drops by reason, judge quality
(position bias and consistency; human agreement when `rlaif eval-judge` wrote an `eval` entry),
lineage, license and citations. Secrets never reach it: the manifest holds none (rlaif.core.secrets), and
the card's text is scrubbed again of the values of the API-key variables the recipe names, the Hub
token variables and key-like strings (`scrub_text`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import DatasetCard, DatasetCardData

from rlaif.calls.costs import cost_rows
from rlaif.core.figures import figure
from rlaif.core.secrets import manifest_secrets, scrub_text
from rlaif.publish.review_figures import review_rows
from rlaif.store.diff import flatten

TEMPLATE = Path(str(resources.files("rlaif.publish") / "templates" / "dataset_card.md.j2"))
DATA_GLOB = "data/train-*.parquet"
DEFAULT_LICENSE = "other"


def _info(trainer: str | None, tags: list[str], what: str) -> dict[str, Any]:
    return {"trainer": trainer, "config": trainer and trainer.replace("Trainer", "Config"), "tags": tags, "what": what}


FORMAT_INFO: dict[str, dict[str, Any]] = {
    "dpo": _info("DPOTrainer", ["dpo", "preference"], "preference pairs (explicit prompt, chosen, rejected)"),
    "rm": _info(
        "RewardTrainer",
        ["reward-modeling", "preference"],
        "preference pairs for a reward model; RewardTrainer subtracts `margin` in its loss",
    ),
    "kto": _info(
        "KTOTrainer", ["kto", "unpaired-preference"], "unpaired prompt/completion/label rows (label True = desirable)"
    ),
    "sft": _info(
        "SFTTrainer",
        ["sft", "best-of-n"],
        "the best response per prompt (best-of-n distillation) as prompt/completion",
    ),
    "prompts": _info(
        "GRPOTrainer", ["grpo", "rloo", "prompt-only"], "prompt-only rows for online methods (GRPO, RLOO)"
    ),
    "listwise": _info(
        None,
        ["ranking", "listwise"],
        "every response of a prompt with its score and rank (1 = best, ties share a rank)",
    ),
    "openrlhf-pairs": _info(
        None,
        ["openrlhf", "reward-modeling", "preference"],
        "preference pairs for OpenRLHF's RewardDataset (train_rm / train_dpo: --prompt_key prompt --chosen_key chosen "
        "--rejected_key rejected, --apply_chat_template for the conversational style)",
    ),
    "verl-rl": _info(
        None,
        ["verl", "rlhf", "prompt-only"],
        "verl RL rows (data_source, prompt messages, ability, reward_model, extra_info) for data.train_files; "
        "score them with `rlaif serve-reward` and custom_reward_function.path=rlaif/training/reward_server.py",
    ),
}

COLUMNS = {
    "prompt": "the conversation to answer (messages; plain text in the standard style)",
    "chosen": "the preferred response",
    "rejected": "the other response",
    "completion": "one response",
    "label": "True when the response is desirable (chosen / judged good), False otherwise",
    "prompt_id": "id of the prompt in the version's `prompts` table",
    "chosen_id": "generation id (`prompt_id/policy/sample`) of the chosen response",
    "rejected_id": "generation id of the rejected response",
    "response_id": "generation id (`prompt_id/policy/sample`) of the response",
    "response_ids": "generation ids of the responses, in the order of `responses`",
    "responses": "every judged response to the prompt",
    "policy": "the policy that wrote the response",
    "policies": "the policy of each response",
    "chosen_policy": "the policy that wrote the chosen response",
    "rejected_policy": "the policy that wrote the rejected response",
    "p_chosen": "soft label: P(chosen is better), judged in both orders, position bias removed, averaged",
    "margin": "|2 p_chosen - 1|: 0 is a tie, 1 a certain preference",
    "p_chosen_raw_ab": "P(chosen is better) with chosen shown first, before debiasing",
    "p_chosen_raw_ba": "P(chosen is better) with chosen shown second, before debiasing",
    "judge_model": "the judge model",
    "judge_template_sha256": "sha256 of the judge template",
    "score": (
        "kto: P(this response wins its pair) or the pointwise judge's score; "
        "sft: the best response's mean P(win) over its kept pairs, or its ranking score"
    ),
    "scores": "one score per response, higher is better",
    "ranks": "one rank per response, 1 = best, ties share a rank",
    "judge": "the judge that ranked the responses: listwise, pointwise or pairwise",
    "agreement": "listwise judge: Kendall tau between the rankings of shuffled orders (empty otherwise)",
    "data_source": "verl: where the row comes from (`rlaif/<version id>`), handed to the reward function",
    "ability": "verl: the task category (alignment)",
    "reward_model": "verl: {style: model, ground_truth: the version's best response (not read by a model reward)}",
    "extra_info": "verl: {split, index, prompt_id, messages}: the prompt travels here to the reward function",
}


def size_category(n: int) -> str:
    """The Hub's size bucket for n rows.

    >>> size_category(12), size_category(5000), size_category(2_000_000)
    ('n<1K', '1K<n<10K', '1M<n<10M')
    """
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < limit:
            return name
    return "n>10M"


def license_of(manifest: dict[str, Any], license: str | None = None) -> str:
    """The card's license: the argument, else the recipe's `license` field, else "other".

    >>> license_of({"recipe": {"license": "cc-by-4.0"}}), license_of({}, "mit"), license_of({})
    ('cc-by-4.0', 'mit', 'other')
    """
    return license or (manifest.get("recipe") or {}).get("license") or DEFAULT_LICENSE


def card_data(
    manifest: dict[str, Any], fmt: str, style: str, n_rows: int, license: str, data_sha256: str = ""
) -> DatasetCardData:
    """The front matter for the Hub. The config's `description` names the data file's sha256:
    `datasets` keys its cache of a local folder on the card's configs (not on the files), so
    without it a re-export to the same folder would load the previous rows from the cache."""
    description = f"rlaif {fmt} export ({style}) of {manifest['id']}" + (
        f", data sha256 {data_sha256}" if data_sha256 else ""
    )
    config = {
        "config_name": "default",
        "data_files": [{"split": "train", "path": DATA_GLOB}],
        "description": description,
    }
    return DatasetCardData(
        license=license,
        pretty_name=f"{manifest.get('name', manifest['id'])} ({fmt}, {style})",
        tags=["rlaif", "synthetic", "trl", *FORMAT_INFO[fmt]["tags"]],
        task_categories=["text-generation"],
        size_categories=[size_category(n_rows)],
        configs=[config],
        rlaif={
            "version": manifest["id"],
            "format": fmt,
            "style": style,
            "rows": n_rows,
            "data_sha256": data_sha256 or None,
            "package_version": manifest.get("package_version"),
        },
    )


def _cell(value: Any) -> str:
    r"""A Markdown table cell: pipes escaped, line breaks flattened.

    >>> _cell("|2 p - 1|"), _cell(0.123456), _cell(None)
    ('\\|2 p - 1\\|', '0.1235', 'n/a')
    """
    return figure(value, missing="n/a").replace("|", "\\|").replace("\n", " ")


def table_rows(rows: list[tuple[Any, Any]]) -> list[tuple[str, str]]:
    """Table rows with both cells escaped for the template's Markdown tables."""
    return [(_cell(a), _cell(b)) for a, b in rows]


def flat_rows(value: Any) -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, scalar) table rows, lists as JSON (rlaif.store.diff.flatten)."""
    return list(flatten(value, lists="json").items())


def model_rows(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    models = manifest.get("models") or {}
    rows = [
        (f"policy `{p.get('name')}`", f"{p.get('model')} ({p.get('backend')})") for p in models.get("policies", [])
    ]
    judge = models.get("judge") or {}
    if judge:
        rows.append(("judge", f"{judge.get('model')} ({judge.get('backend')})"))
    return rows


def count_context(manifest: dict[str, Any]) -> dict[str, list]:
    """Counts (nested ones flattened), drops by reason, and the run's calls and tokens."""
    counts = dict(manifest.get("counts") or {})
    dropped = counts.pop("dropped", {}) or {}
    calls, tokens = manifest.get("calls") or {}, manifest.get("tokens") or {}
    usage = (
        [(f"calls {k}", v) for k, v in calls.items()]
        + [(f"tokens {k}", v) for k, v in tokens.items()]
        + cost_rows(manifest.get("cost"))
    )
    return {
        "count_rows": table_rows(flat_rows(counts)),
        "dropped_rows": table_rows(list(dropped.items()) or [("none", 0)]),
        "usage_rows": table_rows(usage),
    }


def judge_context(manifest: dict[str, Any], evaluation: dict | list | None = None) -> dict[str, Any]:
    """The judge's figures from the run, and each human-agreement evaluation (rows and warnings)."""
    judge = dict(manifest.get("judge") or {})
    bias = judge.pop("position_bias", {}) or {}
    rows = [
        ("judge type", judge.pop("type", None)),
        ("position bias: logit shift towards the first response (beta)", bias.get("beta")),
        ("mean P(first shown wins), raw", bias.get("mean_p_first")),
        ("order consistency, raw (same winner in both orders)", bias.get("raw_consistency")),
        ("order consistency, position bias removed", bias.get("consistency")),
        ("pairs the estimate rests on", bias.get("n")),
        ("mean probability mass on the verdict tokens", judge.pop("mean_prob_mass", None)),
        ("share of kept pairs whose chosen response is the longer one", judge.pop("prefers_longer", None)),
    ]
    rows = [row for row in rows if row[1] is not None or row[0] == "judge type"]
    rows += [(judge_label(key), value) for key, value in flat_rows(judge)]
    evaluations = evaluation if evaluation is not None else manifest.get("eval")
    if isinstance(evaluations, dict):
        evaluations = [evaluations]
    shown = [
        {"rows": table_rows(eval_rows(item)), "warnings": list(item.get("warnings") or [])}
        for item in evaluations or []
    ]
    return {"position_bias": bool(bias), "judge_rows": table_rows(rows), "evaluations": shown}


def judge_label(key: str) -> str:
    """Readable names for the measures listwise / pointwise judges report; other keys as they are.

    >>> judge_label("first_choice_by_slot_k4"), judge_label("mode")
    ('share of first choices by presentation slot, 4 responses shown (uniform = no position bias)', 'mode')
    """
    if key.startswith("first_choice_by_slot_k"):
        return f"share of first choices by presentation slot, {key.rsplit('_k', 1)[1]} responses shown (uniform = no position bias)"
    labels = {
        "mean_kendall_tau": "mean Kendall tau between the rankings of shuffled orders (1 = order does not matter)"
    }
    return labels.get(key, key)


EVAL_FIGURES = {
    "n": "gold pairs judged",
    "agreement": "agreement with the human label",
    "kappa": "Cohen's kappa with the human label",
    "position_consistency": "order consistency, raw",
    "position_consistency_debiased": "order consistency, position bias removed",
    "prefers_longer": "share of verdicts for the longer response",
    "baseline_longer": "agreement of the rule 'the longer one wins'",
    "baseline_shorter": "agreement of the rule 'the shorter one wins'",
    "ece": "expected calibration error of P(chosen)",
    "failures": "gold pairs the judge failed on",
}


def eval_rows(evaluation: dict[str, Any]) -> list[tuple[str, Any]]:
    """The figures of one `rlaif eval-judge` result: the known ones named, then the gold file and
    any other scalar figure (per-row outcomes and the judge's full settings are left out)."""
    rows = [(label, evaluation[key]) for key, label in EVAL_FIGURES.items() if key in evaluation]
    skip = {*EVAL_FIGURES, "outcomes", "judge", "path", "calls", "package_version", "warnings"}
    return rows + [(key, value) for key, value in flat_rows({k: v for k, v in evaluation.items() if k not in skip})]


def lineage_rows(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    rows = [
        ("version", f"`{manifest['id']}`"),
        ("created", manifest.get("created_at")),
        ("parents", ", ".join(manifest.get("parents") or []) or "none"),
    ]
    rows += [(f"input {key}", value) for key, value in flat_rows(manifest.get("inputs") or {})]
    return [*rows, ("rlaif version", manifest.get("package_version"))]


def card_context(
    manifest: dict[str, Any],
    fmt: str,
    style: str,
    n_rows: int,
    columns: list[str],
    source: str,
    license: str,
    evaluation: dict | list | None,
    sft: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Every variable of the card template besides `card_data`; `sft`: rlaif.store.rows.sft_selection."""
    info = FORMAT_INFO[fmt]
    templates = [(name, f"`{sha}`") for name, sha in (manifest.get("prompt_templates") or {}).items()]
    return {
        "title": manifest.get("name", manifest["id"]),
        "version": manifest["id"],
        "fmt": fmt,
        "style": style,
        "n_rows": n_rows,
        "what": info["what"],
        "trainer": info["trainer"],
        "trainer_config": info["config"],
        "data_glob": DATA_GLOB,
        "source": source,
        "column_rows": table_rows([(f"`{name}`", COLUMNS.get(name, "")) for name in columns]),
        "model_rows": table_rows(model_rows(manifest)),
        "template_rows": table_rows(templates),
        **count_context(manifest),
        **judge_context(manifest, evaluation),
        "review_rows": table_rows(review_rows(manifest)),
        "lineage_rows": table_rows(lineage_rows(manifest)),
        "recipe_yaml": yaml.safe_dump(manifest.get("recipe") or {}, sort_keys=False, allow_unicode=True),
        "license": license,
        "license_missing": license == DEFAULT_LICENSE,
        "sft": sft,
    }


def render_card(
    manifest: dict[str, Any],
    fmt: str,
    style: str,
    n_rows: int,
    columns: list[str],
    source: str,
    license: str | None = None,
    evaluation: dict | list | None = None,
    data_sha256: str = "",
    sft: dict[str, int] | None = None,
) -> str:
    """The README.md of an export of `manifest`'s version in format `fmt` and `style`.

    `evaluation`: `rlaif eval-judge` result(s) to report; default: the manifest's `eval` entry.
    `data_sha256`: sha256 of the exported Parquet file (recorded in the front matter).
    `sft`: how the sft rows were chosen ({"judged", "rows", "left_out"}, rlaif.store.rows.sft_selection).
    """
    chosen = license_of(manifest, license)
    data = card_data(manifest, fmt, style, n_rows, chosen, data_sha256)
    context = card_context(manifest, fmt, style, n_rows, columns, source, chosen, evaluation, sft)
    card = str(DatasetCard.from_template(data, template_path=str(TEMPLATE), **context))
    return scrub_text(
        card if card.endswith("\n") else card + "\n", manifest_secrets(manifest)
    )  # Jinja drops the final newline
