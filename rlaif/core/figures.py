"""How rlaif shows a value in a table (the CLI, the HTML reports, the cards): the one number format."""

from __future__ import annotations

from typing import Any


def figure(value: Any, missing: str = "-") -> str:
    """A value as a table shows it: floats to 4 significant digits, None as `missing`, the rest as text.

    >>> figure(None), figure(0.123456), figure(3), figure(None, missing="n/a")
    ('-', '0.1235', '3', 'n/a')
    """
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
