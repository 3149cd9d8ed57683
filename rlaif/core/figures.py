"""How rlaif shows a value in a table (the CLI, the HTML reports, the cards): the one number format."""

from __future__ import annotations

from typing import Any


def figure(value: Any, missing: str = "-") -> str:
    """A value as a table shows it: floats to 4 significant digits, None as `missing`, booleans as yes / no, an empty
    mapping or list as "none", the rest as text (never a Python repr such as True or {}).

    >>> figure(None), figure(0.123456), figure(3), figure(None, missing="n/a"), figure(True), figure({})
    ('-', '0.1235', '3', 'n/a', 'yes', 'none')
    """
    if value is None:
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list, tuple)) and not value:
        return "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
