"""What every judge type shares: templates (each with its protocol, rlaif.judges.protocol),
principles, and scoring through the cache with an optional chain-of-thought step (rationale
first, verdict scored in a second call)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import jinja2
import yaml

from rlaif.backends import make_backend, opened
from rlaif.backends.base import GenerateRequest, ScoreRequest, Scores
from rlaif.calls.cache import CallCache, CallStats
from rlaif.calls.engine import run_generate, run_score
from rlaif.core.errors import RecipeError
from rlaif.core.schema import Prompt, content_hash
from rlaif.judges.parsers import neutralize
from rlaif.judges.protocol import DEFAULTS, Protocol, read_protocol

BUILT_IN = "prompts/"  # recipe paths under it are rlaif's own files (package data of rlaif.judges) unless the current folder has one
COT_INSTRUCTION = (
    "\n\nFirst explain your reasoning in two or three sentences. Then give your verdict in the required format."
)
COT_FOLLOW_UP = "Now give only your final verdict, in the required format."
PrincipleFor = Callable[[str], "str | None"]  # item key -> principle text (or None)


@dataclass(frozen=True)
class JudgeTemplate:
    name: str
    text: str
    protocol: Protocol = DEFAULTS[
        "pairwise"
    ]  # how the verdict is asked for and read (the file's rlaif-protocol block)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def render_vars(self, **variables) -> str:
        """Render with every response passed through `neutralize` by the caller; undefined names fail."""
        return _compiled(self.text).render(**variables).strip()

    def neutralize(self, response: str) -> str:
        """A response with verdict look-alikes defused, this template's protocol's included."""
        if self.protocol in DEFAULTS.values():  # rlaif's own forms, defused as they always were
            return neutralize(response)
        options = self.protocol.options or tuple(str(n) for n in range(1, 11))  # pointwise: ratings
        return neutralize(response, self.protocol.prefix, options)

    def render(self, instruction: str, output_a: str, output_b: str, principle: str | None = None) -> str:
        return self.render_vars(
            instruction=instruction,
            output_a=self.neutralize(output_a),
            output_b=self.neutralize(output_b),
            principle=principle,
        )


@functools.lru_cache(maxsize=64)
def _compiled(text: str) -> jinja2.Template:
    """Compile a template once (1 ms per render otherwise: most of a cached re-run's time)."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(text)


def resolve_path(path: str, folder: Path | None = None) -> Path | None:
    """A judge template or constitution named in a recipe: relative to the recipe file's `folder` first,
    then to the current folder, else (for `prompts/...`) rlaif's own copy, shipped in the package
    (rlaif/judges/prompts/)."""
    candidates = [Path(path)]
    if folder is not None and not Path(path).is_absolute():
        candidates.insert(0, folder / path)
    if Path(path).as_posix().startswith(BUILT_IN):
        candidates.append(Path(str(resources.files("rlaif.judges") / path)))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def load_template(
    path: str, key: str = "judge.template", judge_type: str = "pairwise", folder: Path | None = None
) -> JudgeTemplate:
    """Read a judge template and its protocol; a relative path is tried from the recipe's `folder`, the current
    folder, then rlaif's own prompts/."""
    found = resolve_path(path, folder)
    if found is None:
        raise RecipeError(
            path, key, "template file not found", "use one of prompts/*_judge.j2 or a path to your .j2 file"
        )
    text = found.read_text(encoding="utf-8")
    return JudgeTemplate(name=Path(path).name, text=text, protocol=read_protocol(text, judge_type, path, key))


def judge_template(spec) -> JudgeTemplate:
    """The template of a judge spec (its `template_path`, from the recipe's folder first), read as its judge type's protocol."""
    return load_template(spec.template_path, "judge.template", spec.type, spec.folder)


def instruction_text(prompt: Prompt) -> str:
    """The conversation the responses answer, as the judge sees it (system prompts left out)."""
    turns = [m for m in prompt.messages if m["role"] != "system"]
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n\n".join(f"{m['role'].upper()}: {m['content']}" for m in turns)


def load_principles(path: str, folder: Path | None = None) -> list[str]:
    """A constitution: a YAML list of principle strings (or a mapping with a `principles` list), from the
    recipe's `folder` first (resolve_path)."""
    found = resolve_path(path, folder)
    if found is None:
        raise RecipeError(
            path,
            "judge.principles.path",
            "file not found",
            "use prompts/constitution.yaml or a path to your YAML list",
        )
    try:
        data = yaml.safe_load(found.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(path, "judge.principles.path", f"not valid YAML ({exc})", "fix the syntax") from None
    items = data.get("principles") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items or not all(isinstance(p, str) and p.strip() for p in items):
        raise RecipeError(
            path,
            "judge.principles.path",
            "must be a non-empty list of principle strings",
            "see prompts/constitution.yaml",
        )
    return [p.strip() for p in items]


def sampled_principle(principles: list[str], seed: int) -> PrincipleFor:
    """One principle per item, fixed by the item's key and the seed (so re-runs hit the cache).

    >>> pick = sampled_principle(["x", "y", "z"], 0)
    >>> pick("item-1") == pick("item-1"), pick("item-1") in {"x", "y", "z"}
    (True, True)
    """
    return lambda key: principles[int(content_hash([key, seed], 8), 16) % len(principles)]


def fixed_principle(principle: str | None) -> PrincipleFor:
    return lambda key: principle


def _rationale_request(request: ScoreRequest, tokens: int) -> GenerateRequest:
    *head, (role, content) = request.messages
    return GenerateRequest(
        messages=(*head, (role, content + COT_INSTRUCTION)), temperature=0.0, top_p=1.0, max_tokens=tokens, seed=0
    )


def _with_rationale(request: ScoreRequest, rationale: str) -> ScoreRequest:
    """The verdict request of the second step: the rationale as the judge's turn, then the ask."""
    *head, (role, content) = request.messages
    cut = (
        rationale.rsplit(request.prefix.strip(), 1)[0].strip() or rationale.strip()
    )  # the written verdict is left to step two
    messages = (*head, (role, content + COT_INSTRUCTION), ("assistant", cut), ("user", COT_FOLLOW_UP))
    return replace(request, messages=messages)


def score_all(
    spec, requests: list[ScoreRequest], cache: CallCache, stats: CallStats, template_sha256: str, label: str
) -> list[Scores | Exception]:
    """Score every request through the cache; with chain_of_thought, write rationales first.

    A failed rationale fails its verdict (as a value); nothing else is affected.
    """
    with opened(make_backend, spec) as backend:
        if not getattr(spec, "chain_of_thought", False):
            return run_score(backend, requests, cache, stats, template_sha256, label=label)
        rationales = run_generate(
            backend,
            [_rationale_request(r, spec.rationale_tokens) for r in requests],
            cache,
            stats,
            label=f"{label}: rationales",
        )
        ready = [i for i, r in enumerate(rationales) if not isinstance(r, Exception)]
        second = [_with_rationale(requests[i], rationales[i].text) for i in ready]
        scored = run_score(backend, second, cache, stats, template_sha256, label=f"{label}: verdicts")
    results: list[Scores | Exception] = list(rationales)
    for index, result in zip(ready, scored):
        if not isinstance(result, Exception):
            result.text = f"[rationale] {rationales[index].text}\n[verdict] {result.text}"
        results[index] = result
    return results
