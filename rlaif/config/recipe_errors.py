"""Recipe errors in the user's terms: one pydantic error becomes (key, problem, fix), e.g.
``judge.backnd: unknown key - did you mean 'backend'?`` or ``judge.aspects: does not apply to a
pairwise judge (only to pointwise judges)``. rlaif.config.recipe raises them as RecipeError."""

from __future__ import annotations

import difflib

from pydantic import BaseModel

from rlaif.config.recipe_checks import SECRET_FIELDS, has_key

Judges = dict[str, type[BaseModel]]  # judge type -> its recipe model (rlaif.config.recipe.JUDGE_MODELS)


def describe(error: dict, root: type[BaseModel], judges: Judges) -> tuple[str, str, str]:
    """Turn one pydantic error of validating `root` (the recipe) into (key, problem, fix)."""
    loc, tag = untagged([str(part) for part in error["loc"]], judges)
    key = ".".join(loc)
    if error["type"] == "extra_forbidden":
        return unknown_key(loc, model_at(loc[:-1], root, judges, tag), tag, judges)
    if error["type"] == "union_tag_invalid":
        close = difflib.get_close_matches(str(error["ctx"]["tag"]), list(judges), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"{key}.type", f"unknown judge type {error['ctx']['tag']!r}", f"{hint}one of: {', '.join(judges)}"
    if error["type"] == "missing":
        return key, "required key is missing", "add it (see recipes/demo.yaml for an example)"
    if error["type"] == "recipe_value":
        key = (
            ".".join([*loc, error["ctx"]["key"]]) if error["ctx"].get("key") else key
        )  # a check of the model names its field
        return key, error["ctx"]["problem"], error["ctx"]["fix"]
    if error["type"] == "finite_number":
        return key, error["msg"], "write a number; .inf, .nan and numbers too large for a float are not allowed"
    if set(loc) & set(SECRET_FIELDS) or has_key(error.get("input")):
        return key, error["msg"], "(the value is not shown: it may hold a secret)"
    return key, error["msg"], f"got {error.get('input')!r}"


def untagged(loc: list[str], judges: Judges) -> tuple[list[str], str | None]:
    """The location without the judge-type tag pydantic puts after `judge`, and that tag.

    >>> untagged(["judge", "pointwise", "scale"], {"pointwise": BaseModel}), untagged(["filters", "min_margin"], {})
    ((['judge', 'scale'], 'pointwise'), (['filters', 'min_margin'], None))
    """
    if len(loc) >= 2 and loc[0] == "judge" and loc[1] in judges:
        return [loc[0], *loc[2:]], loc[1]
    return loc, None


def types_taking(field: str, judges: Judges) -> list[str]:
    """The judge types whose model has `field`."""
    return [kind for kind, model in judges.items() if field in model.model_fields]


def unknown_key(
    loc: list[str], model: type[BaseModel] | None, tag: str | None, judges: Judges
) -> tuple[str, str, str]:
    """An unknown key of `model`: the closest known one, or (on a judge) the judge types that take it."""
    key, name = ".".join(loc), loc[-1]
    on_judge = model in judges.values()
    sampling = ("temperature", "top_p", "params")
    if on_judge and difflib.get_close_matches(name, [*sampling, *(model.model_fields if model else ())], n=1)[:1] in (
        [s] for s in sampling
    ):
        return (
            key,
            "the judge takes no sampling settings",
            "remove it: the judge reads its verdict greedily (the verdict tokens' probabilities where it can), "
            "which debiasing needs; its max_tokens and seed are keys of `judge:` itself",
        )
    takers = types_taking(name, judges) if on_judge else []
    if takers:
        problem = f"does not apply to a {tag or 'pairwise'} judge (only to {' and '.join(takers)} judges)"
        return key, problem, f"remove `{name}`, or set `type: {takers[0]}`"
    known = sorted(model.model_fields) if model else []
    candidates = sorted({f for m in judges.values() for f in m.model_fields}) if on_judge else known
    close = difflib.get_close_matches(name, candidates, n=1)
    if close and close[0] not in known:
        return (
            key,
            "unknown key",
            f"did you mean '{close[0]}'? (it applies to {' and '.join(types_taking(close[0], judges))} judges only)",
        )
    return key, "unknown key", f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(known)}"


def model_at(
    loc: list[str], root: type[BaseModel], judges: Judges, judge_type: str | None = None
) -> type[BaseModel] | None:
    """The model at a location under `root` (list indices skipped); `judge` is the model of `judge_type`."""
    model: type[BaseModel] | None = root
    for part in loc:
        if part.isdigit() or model is None:
            continue
        if model is root and part == "judge":
            model = judges[judge_type or "pairwise"]
            continue
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        args = getattr(annotation, "__args__", ())
        candidates = [a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        model = candidates[0] if candidates else None
    return model
