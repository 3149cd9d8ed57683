"""Model plumbing shared by the hand-written trainers (PPO, RRHF): settings into a config
dataclass, the policy (optionally with LoRA), the value head, the reference and saving."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

COMMON = ("max_steps", "learning_rate", "batch_size", "max_length", "seed")


def config_from_settings(config_class: type, settings: Any) -> Any:
    """The config dataclass from a job's settings: the common attributes that the class has (when
    set), then `settings.options` (its own fields by name), which win."""
    names = {f.name for f in dataclasses.fields(config_class)}
    values = {
        name: getattr(settings, name) for name in COMMON if name in names and getattr(settings, name, None) is not None
    }
    options = dict(getattr(settings, "options", None) or {})
    unknown = sorted(set(options) - names)
    if unknown:
        from rlaif.core.errors import RecipeError

        raise RecipeError(
            "training settings",
            f"options.{unknown[0]}",
            f"not a field of {config_class.__name__}",
            f"valid fields: {', '.join(sorted(names))}",
        )
    return config_class(**{**values, **options})


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_policy(path: str, settings: Any, device: str) -> tuple[nn.Module, bool]:
    """The causal LM to train (float32); with settings.lora, LoRA adapters (peft) built from the
    settings' lora_r, lora_alpha, lora_dropout and lora_target_modules. Returns (model, lora)."""
    from transformers import AutoModelForCausalLM

    from rlaif.training.config import lora_config

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
    lora = bool(getattr(settings, "lora", False))
    if lora:
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(settings))
    return model, lora


def set_lora_dropout(model: nn.Module, active: bool) -> None:
    """Switches the LoRA adapters' dropout on or off, leaving every other module's mode alone (the
    base model's own dropout stays off: the trainers keep the policy in eval mode)."""
    for module in model.modules():
        dropout = getattr(module, "lora_dropout", None)
        if isinstance(dropout, nn.ModuleDict):
            dropout.train(active)


@contextlib.contextmanager
def lora_dropout_on(model: nn.Module):
    """LoRA dropout active inside the block (the update's forward passes), off again after it."""
    set_lora_dropout(model, True)
    try:
        yield
    finally:
        set_lora_dropout(model, False)


@contextlib.contextmanager
def only_generation_config(model: nn.Module, config):
    """`model.generate` with `config` alone. transformers fills every field a passed config leaves
    unset from the model's own generation_config (its repetition_penalty, min_p, suppress_tokens, ...),
    so that one is swapped for `config` inside the block (on the base model, which peft's generate reads)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    saved, base.generation_config = base.generation_config, config
    try:
        yield
    finally:
        base.generation_config = saved


def frozen_reference(policy: nn.Module, lora: bool) -> nn.Module | None:
    """A frozen copy of the starting policy; None with LoRA (the reference is the policy with its adapters off)."""
    if lora:
        return None
    reference = copy.deepcopy(policy).eval()
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    return reference


class ValueHead(nn.Module):
    """V(state) from the policy's last hidden state: one linear layer, kept apart from the weights saved."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Values in float32 also under bf16 autocast (there a bare `.float()` input still gets a bf16 matmul)."""
        with torch.autocast(hidden.device.type, enabled=False):
            return self.linear(hidden.float()).squeeze(-1)


def save_policy(policy: nn.Module, tokenizer, output_dir: Path, lora: bool) -> Path:
    """The trained weights (or the LoRA adapter) and the tokenizer into output_dir/model (or /adapter)."""
    out = Path(output_dir) / ("adapter" if lora else "model")
    policy.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def prompt_text(tokenizer, messages: list[dict]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def autocast(device: str):
    """bf16 autocast on a GPU, nothing on CPU (bf16 is many times slower there)."""
    import contextlib

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
