"""The dataset card (README.md of an export), generated from a version's manifest.

YAML front matter for the Hugging Face Hub (license, tags, a `configs` entry that points
`datasets.load_dataset` at the export's Parquet files only), then: what the rows are and how to
load them, the recipe, models, templates with sha256, counts and drops by reason, judge quality
(position bias and consistency; human agreement when `rlaif eval-judge` wrote an `eval` entry),
lineage, license and citations. Secrets never reach it: the manifest holds none (rlaif.secrets), and
the card's text is scrubbed again of the values of the API-key variables the recipe names, the Hub
token variables and key-like strings (`scrub_text`).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from rlaif.secrets import manifest_secrets, scrub_text

DATA_GLOB = "data/train-*.parquet"
DEFAULT_LICENSE = "other"


def _info(trainer: str | None, tags: list[str], what: str) -> dict[str, Any]:
    return {"trainer": trainer, "config": trainer and trainer.replace("Trainer", "Config"), "tags": tags, "what": what}


FORMAT_INFO: dict[str, dict[str, Any]] = {
    "dpo": _info("DPOTrainer", ["dpo", "preference"], "preference pairs (explicit prompt, chosen, rejected)"),
    "rm": _info(
        "RewardTrainer", ["reward-modeling", "preference"], "preference pairs for a reward model; RewardTrainer subtracts `margin` in its loss"
    ),
    "kto": _info("KTOTrainer", ["kto", "unpaired-preference"], "unpaired prompt/completion/label rows (label True = desirable)"),
    "sft": _info("SFTTrainer", ["sft", "best-of-n"], "the best response per prompt (best-of-n distillation) as prompt/completion"),
    "prompts": _info("GRPOTrainer", ["grpo", "rloo", "prompt-only"], "prompt-only rows for online methods (GRPO, RLOO)"),
    "listwise": _info(None, ["ranking", "listwise"], "every response of a prompt with its score and rank (1 = best, ties share a rank)"),
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
        "sft: the best response's mean P(win) over its pairs, or its ranking score"
    ),
    "scores": "one score per response, higher is better",
    "ranks": "one rank per response, 1 = best, ties share a rank",
    "judge": "the judge that ranked the responses: listwise, pointwise or pairwise",
    "agreement": "listwise judge: Kendall tau between the rankings of shuffled orders (empty otherwise)",
}

CITATIONS = """\
@article{lee2023rlaif,
  title={RLAIF: Scaling Reinforcement Learning from Human Feedback with AI Feedback},
  author={Lee, Harrison and Phatale, Samrat and Mansoor, Hassan and Mesnard, Thomas and Ferret, Johan and Lu, Kellie and Bishop, Colton and Hall, Ethan and Carbune, Victor and Rastogi, Abhinav and Prakash, Sushant},
  journal={arXiv preprint arXiv:2309.00267}, year={2023}
}
@inproceedings{rafailov2023dpo,
  title={Direct Preference Optimization: Your Language Model is Secretly a Reward Model},
  author={Rafailov, Rafael and Sharma, Archit and Mitchell, Eric and Ermon, Stefano and Manning, Christopher D. and Finn, Chelsea},
  booktitle={Advances in Neural Information Processing Systems}, year={2023}
}
@article{ethayarajh2024kto,
  title={KTO: Model Alignment as Prospect Theoretic Optimization},
  author={Ethayarajh, Kawin and Xu, Winnie and Muennighoff, Niklas and Jurafsky, Dan and Kiela, Douwe},
  journal={arXiv preprint arXiv:2402.01306}, year={2024}
}
@article{cui2023ultrafeedback,
  title={UltraFeedback: Boosting Language Models with High-quality Feedback},
  author={Cui, Ganqu and Yuan, Lifan and Ding, Ning and Yao, Guanming and Zhu, Wei and Ni, Yuan and Xie, Guotong and Liu, Zhiyuan and Sun, Maosong},
  journal={arXiv preprint arXiv:2310.01377}, year={2023}
}
@article{bai2022constitutional,
  title={Constitutional AI: Harmlessness from AI Feedback},
  author={Bai, Yuntao and Kadavath, Saurav and Kundu, Sandipan and others},
  journal={arXiv preprint arXiv:2212.08073}, year={2022}
}
@inproceedings{zheng2023judging,
  title={Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena},
  author={Zheng, Lianmin and Chiang, Wei-Lin and Sheng, Ying and others},
  booktitle={Advances in Neural Information Processing Systems Datasets and Benchmarks Track}, year={2023}
}"""


def size_category(n: int) -> str:
    """The Hub's size bucket for n rows.

    >>> size_category(12), size_category(5000), size_category(2_000_000)
    ('n<1K', '1K<n<10K', '1M<n<10M')
    """
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "n>10M"


def license_of(manifest: dict[str, Any], license: str | None = None) -> str:
    """The card's license: the argument, else the recipe's `license` field, else "other".

    >>> license_of({"recipe": {"license": "cc-by-4.0"}}), license_of({}, "mit"), license_of({})
    ('cc-by-4.0', 'mit', 'other')
    """
    return license or (manifest.get("recipe") or {}).get("license") or DEFAULT_LICENSE


def front_matter(manifest: dict[str, Any], fmt: str, style: str, n_rows: int, license: str, data_sha256: str = "") -> str:
    """YAML for the Hub. The config's `description` names the data file's sha256: `datasets` keys
    its cache of a local folder on the card's configs (not on the files), so without it a
    re-export to the same folder would load the previous rows from the cache."""
    description = f"rlaif {fmt} export ({style}) of {manifest['id']}" + (f", data sha256 {data_sha256}" if data_sha256 else "")
    config = {"config_name": "default", "data_files": [{"split": "train", "path": DATA_GLOB}], "description": description}
    meta = {
        "license": license,
        "pretty_name": f"{manifest.get('name', manifest['id'])} ({fmt}, {style})",
        "tags": ["rlaif", "synthetic", "trl", *FORMAT_INFO[fmt]["tags"]],
        "task_categories": ["text-generation"],
        "size_categories": [size_category(n_rows)],
        "configs": [config],
        "rlaif": {
            "version": manifest["id"],
            "format": fmt,
            "style": style,
            "rows": n_rows,
            "data_sha256": data_sha256 or None,
            "package_version": manifest.get("package_version"),
        },
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(value: Any) -> str:
    r"""A Markdown table cell: pipes escaped, line breaks flattened.

    >>> _cell("|2 p - 1|"), _cell(0.123456), _cell(None)
    ('\\|2 p - 1\\|', '0.1235', 'n/a')
    """
    return _fmt(value).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, str], rows: list[tuple[Any, Any]]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {_cell(a)} | {_cell(b)} |" for a, b in rows]
    return "\n".join(lines)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, scalar) rows; lists as JSON.

    >>> _flatten({"a": {"b": 1}, "c": [1, 2]})
    [('a.b', 1), ('c', '[1, 2]')]
    """
    if isinstance(value, dict):
        return [row for key, item in value.items() for row in _flatten(item, f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(value, list):
        return [(prefix, json.dumps(value, ensure_ascii=False, default=str))]
    return [(prefix, value)]


def loading_section(fmt: str, style: str) -> str:
    info = FORMAT_INFO[fmt]
    code = [
        "from datasets import load_dataset",
        "",
        'dataset = load_dataset("NS/NAME", split="train")  # this repo on the Hub, or the exported folder\'s path',
        '# or: load_dataset("parquet", data_files="data/train-*.parquet", split="train")',
    ]
    if info["trainer"]:
        code += [f"# trl.{info['trainer']}(model=..., args=trl.{info['config']}(...), train_dataset=dataset, processing_class=tokenizer)"]
    text = "## Loading\n\n```python\n" + "\n".join(code) + "\n```\n"
    if fmt == "kto":
        text += (
            "\nKTOTrainer needs `per_device_train_batch_size` > 1; rows built from pairs are interleaved "
            "(desirable, undesirable, ...) so that its sequential batches hold both labels.\n"
        )
    if fmt == "prompts":
        text += "\nGRPOTrainer / RLOOTrainer keep extra columns (`prompt_id`) and pass them to reward functions as keyword arguments.\n"
    if style == "standard":
        text += (
            "\nStandard style: `prompt` is the conversation rendered as plain text, one turn per paragraph as "
            "`System: ...`, `User: ...`, `Assistant: ...` (turns separated by a blank line), ending in `Assistant:`; "
            "every response starts with one space, so `prompt + completion` reads naturally. TRL adds the EOS token.\n"
        )
    else:
        text += "\nConversational style: prompts and responses are lists of `{role, content}` messages; TRL applies the model's chat template.\n"
    return text


def columns_section(columns: list[str], source: str) -> str:
    rows = [(f"`{name}`", COLUMNS.get(name, "")) for name in columns]
    return f"## Columns\n\nBuilt from the version's `{source}` table.\n\n" + _table(("column", "meaning"), rows) + "\n"


def models_section(manifest: dict[str, Any]) -> str:
    models = manifest.get("models") or {}
    rows = [(f"policy `{p.get('name')}`", f"{p.get('model')} ({p.get('backend')})") for p in models.get("policies", [])]
    judge = models.get("judge") or {}
    if judge:
        rows.append(("judge", f"{judge.get('model')} ({judge.get('backend')})"))
    templates = [(name, f"`{sha}`") for name, sha in (manifest.get("prompt_templates") or {}).items()]
    return "## Models\n\n" + _table(("role", "model (backend)"), rows) + "\n\n## Templates\n\n" + _table(("template", "sha256"), templates) + "\n"


def counts_section(manifest: dict[str, Any]) -> str:
    counts = dict(manifest.get("counts") or {})
    dropped = counts.pop("dropped", {}) or {}
    text = "## Counts\n\n" + _table(("count", "value"), _flatten(counts))
    text += "\n\nCandidate pairs dropped, by reason (each candidate is kept or dropped under exactly one reason):\n\n"
    text += _table(("reason", "pairs"), list(dropped.items()) or [("none", 0)]) + "\n"
    calls, tokens = manifest.get("calls") or {}, manifest.get("tokens") or {}
    if calls or tokens:
        usage = [(f"calls {k}", v) for k, v in calls.items()] + [(f"tokens {k}", v) for k, v in tokens.items()]
        text += "\nModel calls and tokens of the run:\n\n" + _table(("", "value"), usage) + "\n"
    return text


def judge_section(manifest: dict[str, Any], evaluation: dict | list | None = None) -> str:
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
    rows += [(judge_label(key), value) for key, value in _flatten(judge)]
    intro = "## Judge quality\n\n"
    if bias:
        intro += (
            "Every pair is judged in both orders. The judge's position bias is estimated over the run and removed in "
            "logit space before the two orders are averaged (Lee et al. 2023). For reference, MT-Bench found GPT-4 65% "
            "consistent when the two answers are swapped (Zheng et al. 2023).\n\n"
        )
    text = intro + _table(("measure", "value"), rows) + "\n"
    evaluations = evaluation if evaluation is not None else manifest.get("eval")
    if isinstance(evaluations, dict):
        evaluations = [evaluations]
    for item in evaluations or []:
        text += "\nAgreement with human labels (`rlaif eval-judge`):\n\n" + _table(("measure", "value"), eval_rows(item)) + "\n"
    if not evaluations:
        text += "\nNo human-agreement evaluation was recorded for this version (`rlaif eval-judge` measures one).\n"
    return text


def judge_label(key: str) -> str:
    """Readable names for the measures listwise / pointwise judges report; other keys as they are.

    >>> judge_label("first_choice_by_slot_k4"), judge_label("mode")
    ('share of first choices by presentation slot, 4 responses shown (uniform = no position bias)', 'mode')
    """
    if key.startswith("first_choice_by_slot_k"):
        return f"share of first choices by presentation slot, {key.rsplit('_k', 1)[1]} responses shown (uniform = no position bias)"
    labels = {"mean_kendall_tau": "mean Kendall tau between the rankings of shuffled orders (1 = order does not matter)"}
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
    skip = {*EVAL_FIGURES, "outcomes", "judge", "path", "calls", "package_version"}
    return rows + [(key, value) for key, value in _flatten({k: v for k, v in evaluation.items() if k not in skip})]


def lineage_section(manifest: dict[str, Any]) -> str:
    rows = [("version", f"`{manifest['id']}`"), ("created", manifest.get("created_at")), ("parents", ", ".join(manifest.get("parents") or []) or "none")]
    rows += [(f"input {key}", value) for key, value in _flatten(manifest.get("inputs") or {})]
    rows.append(("rlaif version", manifest.get("package_version")))
    recipe = yaml.safe_dump(manifest.get("recipe") or {}, sort_keys=False, allow_unicode=True)
    return "## Lineage\n\n" + _table(("", ""), rows) + f"\n\n## Recipe\n\n```yaml\n{recipe}```\n"


def license_section(license: str) -> str:
    text = f"## License\n\n`{license}`."
    if license == DEFAULT_LICENSE:
        text += (
            " No license was given for this export (set `license` in the recipe, or pass `--license`). The rows contain "
            "the prompts and the outputs of the models above: check the license of the prompt set and the terms of "
            "every model before you share or train on them."
        )
    return text + "\n"


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
) -> str:
    """The README.md of an export of `manifest`'s version in format `fmt` and `style`.

    `evaluation`: `rlaif eval-judge` result(s) to report; default: the manifest's `eval` entry.
    `data_sha256`: sha256 of the exported Parquet file (recorded in the front matter).
    """
    chosen_license = license_of(manifest, license)
    info = FORMAT_INFO[fmt]
    summary = (
        f"# {manifest.get('name', manifest['id'])}: `{fmt}` export ({style})\n\n"
        f"{n_rows} rows of {info['what']}, made with AI feedback by `rlaif` from dataset version "
        f"`{manifest['id']}`."
        + (f" Loads into TRL's `{info['trainer']}` with no glue code." if info["trainer"] else "")
        + "\n"
    )
    parts = [
        front_matter(manifest, fmt, style, n_rows, chosen_license, data_sha256),
        summary,
        loading_section(fmt, style),
        columns_section(columns, source),
        models_section(manifest),
        counts_section(manifest),
        judge_section(manifest, evaluation),
        lineage_section(manifest),
        license_section(chosen_license),
        f"## Citation\n\nThe methods this dataset builds on:\n\n```bibtex\n{CITATIONS}\n```\n",
    ]
    return scrub_text("\n".join(parts), manifest_secrets(manifest))
