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

    `recipe` is a Recipe or None (a recipe file: rlaif.config.recipe.recipe_file_store).

    >>> str(store_path(None, "here")), str(store_path(None, None)) == os.environ.get(STORE_ENV, DEFAULT_STORE)
    ('here', True)
    """
    return chosen_store(store) or Path(getattr(recipe, "store", None) or DEFAULT_STORE)


def chosen_store(store: str | Path | None = None) -> Path | None:
    """The store that --store or $RLAIF_STORE names; None when the recipe's `store:` decides."""
    if store:
        return Path(store)
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV])
    return None
