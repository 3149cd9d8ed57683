"""The lock file and pyproject.toml's ranges, read once for the tests and for `make test-latest`.

`python -m tests.lockfile requirements.lock` (make test-latest): which installed distributions differ
from the lock: one line per package whose version moved since `make lock`, then a count; exits 0
(drift is information: the fast tests that follow say whether it breaks anything).
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    """The `name==version` pins of a lock file, by canonical name."""
    pins = (PIN.match(line) for line in path.read_text().splitlines())
    return {canonical(m.group(1)): m.group(2) for m in pins if m}


def declared() -> list[str]:
    """Every dependency pyproject.toml lists, the optional extras' included, as written."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]


def lower_bound(package: str) -> str:
    """The oldest release pyproject.toml admits for `package` (its `package>=X`)."""
    return next(d.split(">=")[1].split(",")[0] for d in declared() if d.startswith(f"{package}>="))


def installed() -> dict[str, str]:
    return {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions() if d.metadata["Name"]}


def main(lock: str) -> int:
    pins, now = locked(Path(lock)), installed()
    moved = sorted((name, pins[name], now[name]) for name in pins.keys() & now.keys() if pins[name] != now[name])
    new = sorted(set(now) - set(pins) - {"rlaif", "pip", "setuptools", "torch"})
    for name, was, is_now in moved:
        print(f"moved  {name}: {was} (lock) -> {is_now} (today)")
    for name in new:
        print(f"new    {name}: {now[name]} (not in the lock)")
    print(f"lock drift: {len(moved)} moved, {len(new)} new, {len(pins)} pinned in {lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock"))
