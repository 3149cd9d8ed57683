"""Recipe checks that pydantic field types cannot say: no secrets in a recipe, no repeated YAML keys.

A recipe is written down (in the manifest, on the Hub), so a key must live in an environment
variable that the recipe only names; and an error about such a field never shows its value.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic_core import PydanticCustomError

from rlaif.core.errors import RecipeError
from rlaif.core.secrets import secret_query_name

SECRET_FIELDS = ("base_url", "api_key_env")  # a bad value here is never shown in an error
KEY_PREFIXES = (
    "sk-",
    "sk_",
    "hf_",
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "AKIA",
    "AIza",
    "Bearer ",
)
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
KEY_FIX = "put the key in an environment variable (export MY_API_KEY=...) and give the variable's name: api_key_env: MY_API_KEY"


def looks_like_key(text: object) -> bool:
    """Whether a string looks like an API key or token (a known prefix, or a long run of letters and digits)."""
    if not isinstance(text, str):
        return False
    text = text.strip()
    long_token = len(text) >= 24 and text.isalnum() and not text.isalpha() and not text.isdigit()
    return text.startswith(KEY_PREFIXES) or long_token


def value_error(problem: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError("recipe_value", "{problem}", {"problem": problem, "fix": fix})


def check_base_url(value: str | None) -> str | None:
    """Refuse a base_url with credentials in it (user:key@host, or a key in the query); never echo it."""
    if value is None:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        raise value_error(
            "not a valid URL (the value is not shown)", "write it like http://127.0.0.1:8000/v1"
        ) from None
    if "@" in parts.netloc:
        raise value_error(
            "the URL carries credentials (user:password@ before the host; the value is not shown)",
            KEY_FIX + ", and drop them from base_url",
        )
    if any(
        looks_like_key(v) or secret_query_name(k)  # api-key, sig (SAS), X-Amz-Signature, ...
        for k, v in _query(parts.query)
    ):
        raise value_error(
            "the URL carries a key in its query (the value is not shown)", KEY_FIX + ", and drop it from base_url"
        )
    return value


def _query(query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, _, v in (part.partition("=") for part in query.split("&") if part)]


def check_api_key_env(value: str) -> str:
    """api_key_env must name an environment variable, not hold the key itself; never echo it."""
    if looks_like_key(value):
        raise value_error(
            "the value looks like a key, not the name of an environment variable (it is not shown)", KEY_FIX
        )
    if not ENV_NAME_RE.fullmatch(value):
        raise value_error(
            "not an environment variable name (letters, digits and '_', not starting with a digit; the value is not shown)",
            KEY_FIX,
        )
    return value


def has_key(value: object) -> bool:
    """Whether a value, or anything inside it, looks like a key or a URL with credentials."""
    if isinstance(value, dict):
        return any(has_key(k) or has_key(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_key(v) for v in value)
    return looks_like_key(value) or (isinstance(value, str) and "://" in value and "@" in value)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping repeats a key; `first_line` and `line` are 1-based."""

    def __init__(self, key: str, first_line: int, line: int) -> None:
        self.key, self.first_line, self.line = key, first_line, line
        super().__init__(f"duplicate key {key!r} (lines {first_line} and {line})")


class _RecipeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with a repeated key instead of keeping the last one."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise DuplicateKeyError(str(key)[:80], seen[key], line)
                    seen[key] = line
                except TypeError:  # an unhashable key: the base class reports it
                    continue
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> object:
    """yaml.safe_load, except that a repeated key in a mapping raises DuplicateKeyError.

    >>> load_yaml("a: 1\\nb: {c: 2}\\nb: 3\\n")
    Traceback (most recent call last):
    ...
    rlaif.config.recipe_checks.DuplicateKeyError: duplicate key 'b' (lines 2 and 3)
    >>> try:
    ...     load_yaml("judge:\\n  mode: auto\\n  mode: parse\\n")
    ... except DuplicateKeyError as exc:
    ...     print(exc.key, exc.first_line, exc.line)
    judge.mode 2 3
    """
    try:
        return yaml.load(text, Loader=_RecipeLoader)
    except DuplicateKeyError as exc:
        path = _key_path(yaml.compose(text, Loader=yaml.SafeLoader), exc.key, exc.line, set())
        if path:
            exc.key = ".".join(path)
        raise


def _key_path(node, key: str, line: int, seen: set[int]) -> list[str] | None:
    """The path (keys, list indexes) to the mapping key `key` that starts on 1-based `line`."""
    if node is None or id(node) in seen:
        return None
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        children = [(str(k.value), k, v) for k, v in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = [(str(i), None, v) for i, v in enumerate(node.value)]
    else:
        return None
    for label, key_node, value in children:
        if key_node is not None and label[:80] == key and key_node.start_mark.line + 1 == line:
            return [label]
        found = _key_path(value, key, line, seen)
        if found:
            return [label, *found]
    return None


def read_yaml_file(path: str | Path, what: str, missing: str, fix: str) -> object:
    """The YAML of a settings file (a recipe, a training config); RecipeError naming the file for a folder, a
    missing file (`missing`, with `fix`), bad YAML, a repeated key or bytes that are not UTF-8."""
    path = Path(path)
    if path.is_dir():
        raise RecipeError(str(path), "", f"is a folder, not a {what}", fix)
    if not path.is_file():
        raise RecipeError(str(path), "", missing, fix)
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        raise RecipeError(
            str(path),
            exc.key,
            f"duplicate key (lines {exc.first_line} and {exc.line}): YAML keeps only the last one",
            "remove one of them",
        ) from None
    except yaml.YAMLError as exc:
        raise RecipeError(str(path), "", f"not valid YAML ({exc})", "fix the syntax") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(str(path), "", f"not UTF-8 text (byte {exc.start})", f"save the {what} as UTF-8") from None


def read_recipe_yaml(path: str | Path, example: str = "recipes/demo.yaml") -> object:
    """The YAML of a recipe file (`read_yaml_file`: errors name the file)."""
    return read_yaml_file(path, "recipe file", "file not found", f"check the path, e.g. {example}")


def check_policies_make_pairs(recipe):
    """Policies with names of their own, and at least 2 responses per prompt for a judge that makes pairs (every type
    but binary): with one, every prompt has no pair and the run would commit an empty version (a validator of
    rlaif.config.recipe.Recipe)."""
    names = [policy.name for policy in recipe.policies]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise PydanticCustomError(
            "recipe_value",
            "{problem}",
            {
                "key": "policies",
                "problem": f"two policies are named {twice[0]!r}: their responses would get the same ids",
                "fix": "give each policy a name of its own",
            },
        )
    k = recipe.samples_per_prompt * len(recipe.policies)
    if k < 2 and recipe.judge.type != "binary":
        raise PydanticCustomError(
            "recipe_value",
            "{problem}",
            {
                "key": "samples_per_prompt",
                "problem": f"1 response per prompt (1 sample x 1 policy) makes no pair for a {recipe.judge.type} "
                "judge: the run would commit an empty version",
                "fix": "samples_per_prompt: 2 (or a second policy), or judge type: binary for good/bad labels of single responses",
            },
        )
    return recipe


def check_judge_settings_apply(recipe):
    """A judge setting written in the recipe that its judge would never read is an error, not silently dropped:
    `seed` (listwise permutations, best_vs_random), `gold_limit` (with `gold`), `rationale_tokens` (with
    `chain_of_thought`). A validator of rlaif.config.recipe.Recipe."""
    judge = recipe.judge
    written = judge.model_fields_set
    unread = [
        (
            "seed",
            "seed",
            judge.type != "listwise" and judge.pairs != "best_vs_random",
            "it orders listwise permutations and picks best_vs_random pairs",
            "drop seed, or use pairs: best_vs_random",
        ),
        (
            "gold_limit",
            "gold_limit",
            judge.gold is None,
            "it limits the gold pairs of `gold:`, which is not set",
            "drop gold_limit, or add gold: FILE.jsonl",
        ),
        (
            "rationale_tokens",
            "rationale_tokens",
            not judge.chain_of_thought,
            "it bounds a chain-of-thought rationale, which is off",
            "drop rationale_tokens, or set chain_of_thought: true",
        ),
    ]
    for field, key, ignored, what, fix in unread:
        if field in written and ignored:
            raise PydanticCustomError(
                "recipe_value",
                "{problem}",
                {"key": f"judge.{key}", "problem": f"this {judge.type} judge would never read it: {what}", "fix": fix},
            )
    return recipe


def check_listwise_orders(recipe):
    """A debiased listwise judge must show each of a prompt's K responses equally often in every slot:
    `permutations` a multiple of K (or all K! orders; never more than K!), else an error naming the fix (a validator of rlaif.config.recipe.Recipe)."""
    judge, policies = recipe.judge, len(recipe.policies)
    k = recipe.samples_per_prompt * policies
    count = getattr(judge, "permutations", None)
    if judge.type == "listwise" and count is not None and k >= 2 and count > math.factorial(k):
        raise PydanticCustomError(
            "recipe_value",
            "{problem}",
            {
                "key": "judge.permutations",
                "problem": f"{k} responses per prompt ({recipe.samples_per_prompt} samples x {policies} "
                f"polic{'y' if policies == 1 else 'ies'}) have only {math.factorial(k)} distinct orders, so {count} "
                f"orders would judge {math.factorial(k)} while the summary says {count}",
                "fix": f"use permutations: {math.factorial(k)} or fewer",
            },
        )
    if (
        judge.type != "listwise"
        or not judge.debias
        or count is None
        or k < 2
        or count % k == 0
        or count >= math.factorial(k)
    ):
        return recipe
    raise PydanticCustomError(
        "recipe_value",
        "{problem}",
        {
            "key": "judge.permutations",
            "problem": f"{count} orders cannot show each of the {k} responses per prompt ({recipe.samples_per_prompt} samples x {policies} "
            f"polic{'y' if policies == 1 else 'ies'}) equally often in every slot, which `debias` needs to tell a slot's bias from a response's quality",
            "fix": f"use a multiple of {k} (blocks of {k} rotations; e.g. permutations: {k}, the default when left out), or set debias: false",
        },
    )
