"""Settings every command shares, resolved in one place.

The store folder: `--store`, then `$RLAIF_STORE`, then the recipe's `store:`, then `data/store`.
`rlaif run` and `rlaif eval-judge` have a recipe; the `datasets` commands take one with
`--recipe FILE` when the store should come from it.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STORE = "data/store"
STORE_ENV = "RLAIF_STORE"


def store_path(recipe=None, store: str | Path | None = None) -> Path:
    """The store folder: `store` (--store), then $RLAIF_STORE, then the recipe's `store:`, then data/store.

    `recipe` is a Recipe, a recipe file (read only when neither `store` nor $RLAIF_STORE is set), or None.

    >>> str(store_path(None, "here")), str(store_path(None, None)) == os.environ.get(STORE_ENV, DEFAULT_STORE)
    ('here', True)
    """
    if store:
        return Path(store)
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV])
    if isinstance(recipe, (str, Path)):
        from rlaif.recipe import load_recipe

        recipe = load_recipe(recipe)
    return Path(getattr(recipe, "store", None) or DEFAULT_STORE)
