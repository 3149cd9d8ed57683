"""Judge protocols: how a template's verdict is asked for and read, kept in the template file.

A judge is configuration, not code: a template may start with a Jinja comment holding its
protocol as YAML, so a new judge variant is a new file:

    {#- rlaif-protocol
    prefix: "Output ("     # the judge's turn starts with this; the next token is the verdict
    options: [a, b]        # verdict tokens: pairwise [first shown, second shown]; binary [yes, no]
    parser: verdict        # how a written answer is read when there are no probabilities
    -#}

Keys left out keep the judge type's default. The parser is a name from
rlaif.judges.parsers.PARSERS that fits the judge type (`PARSERS_FOR`); pointwise ratings take
their verdict tokens from the recipe's `scale`, so a pointwise protocol has no options.

The comment renders to nothing, and since it is part of the file, its sha256 (recorded on every
judgment, and part of every cache key) changes with the protocol. A template without the block
gets its judge type's protocol (`DEFAULTS`), as rlaif's own templates had before.
"""

from __future__ import annotations

import re

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rlaif.core.errors import RecipeError

BLOCK = re.compile(r"\A\s*\{#-?\s*rlaif-protocol[ \t]*\n(.*?)-?#\}", re.S)
# the names in rlaif.judges.parsers.PARSERS that can read each judge type's verdict
PARSERS_FOR = {
    "pairwise": ("verdict",),
    "binary": ("yes_no", "verdict"),
    "listwise": ("ranking",),
    "pointwise": ("rating",),
}


class Protocol(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(description="The judge's turn starts with this; the next token is read as the verdict.")
    options: tuple[str, ...] = Field(
        default=(),
        description="Verdict tokens (pairwise: first shown, second shown; binary: yes, no; listwise: slot labels).",
    )
    parser: str = Field(description="How a written answer is read when the backend gives no probabilities.")


DEFAULTS: dict[str, Protocol] = {
    "pairwise": Protocol(prefix="Output (", options=("a", "b"), parser="verdict"),
    "listwise": Protocol(prefix="Output (", options=tuple("abcdefgh"), parser="ranking"),
    "pointwise": Protocol(prefix="Rating: ", parser="rating"),
    "binary": Protocol(prefix="Answer: (", options=("yes", "no"), parser="yes_no"),
}
OPTION_COUNTS = {"pairwise": (2, 2), "binary": (2, 2), "listwise": (2, 8), "pointwise": (0, 0)}


def read_protocol(text: str, judge_type: str, path: str = "<template>", key: str = "judge.template") -> Protocol:
    """The protocol a template declares, else its judge type's default.

    >>> read_protocol('{#- rlaif-protocol\\nprefix: "Verdict: "\\noptions: ["1", "2"]\\nparser: verdict\\n-#}\\nWhich?', "pairwise").options
    ('1', '2')
    >>> read_protocol("Which is better?", "pairwise") == DEFAULTS["pairwise"]
    True
    """
    match = BLOCK.match(text)
    if not match and "rlaif-protocol" in text:
        raise RecipeError(
            path,
            key,
            "the rlaif-protocol block must open the template",
            "move the {#- rlaif-protocol ... -#} comment to the top of the file",
        )
    if not match:
        return DEFAULTS[judge_type]
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise RecipeError(
            path,
            key,
            f"the rlaif-protocol block is not valid YAML ({exc})",
            "fix the block at the top of the template",
        ) from None
    if not isinstance(data, dict):
        raise RecipeError(
            path, key, "the rlaif-protocol block must be a YAML mapping", "give prefix, options and parser"
        )
    data = {**DEFAULTS[judge_type].model_dump(), **data}
    if isinstance(data.get("options"), list):
        if any(isinstance(option, bool) for option in data["options"]):
            raise RecipeError(
                path,
                key,
                "rlaif-protocol options: YAML read an option as true/false",
                'quote the options, e.g. options: ["yes", "no"]',
            )
        data["options"] = tuple(str(option) for option in data["options"])
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise RecipeError(
            path, key, f"rlaif-protocol {field}: {error['msg']}", "allowed keys: prefix, options, parser"
        ) from None
    if protocol.parser not in PARSERS_FOR[judge_type]:
        raise RecipeError(
            path,
            key,
            f"rlaif-protocol parser: {protocol.parser!r} cannot read a {judge_type} verdict",
            f"use parser: {' or '.join(PARSERS_FOR[judge_type])}",
        )
    low, high = OPTION_COUNTS[judge_type]
    if not low <= len(protocol.options) <= high or len(set(protocol.options)) != len(protocol.options):
        raise RecipeError(
            path,
            key,
            f"rlaif-protocol options: a {judge_type} judge needs {low}-{high} distinct verdict tokens, got {list(protocol.options)}",
            "e.g. options: [a, b]" if high else "leave options out",
        )
    return protocol
