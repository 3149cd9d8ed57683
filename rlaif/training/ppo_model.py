"""Model plumbing shared by the hand-written trainers (PPO, RRHF): settings into a config
dataclass, the policy (optionally with LoRA), the value head, the reference and saving."""

from __future__ import annotations

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
    values = {name: getattr(settings, name) for name in COMMON if name in names and getattr(settings, name, None) is not None}
    options = dict(getattr(settings, "options", None) or {})
    unknown = sorted(set(options) - names)
    if unknown:
        from rlaif.errors import RecipeError

        raise RecipeError("training settings", f"options.{unknown[0]}", f"not a field of {config_class.__name__}", f"valid fields: {', '.join(sorted(names))}")
    return config_class(**{**values, **options})


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_policy(path: str, settings: Any, device: str) -> tuple[nn.Module, bool]:
    """The causal LM to train (float32; LoRA adapters via peft when settings.lora); returns (model, lora)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
    lora = bool(getattr(settings, "lora", False))
    if lora:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=getattr(settings, "lora_r", None) or 16, lora_alpha=getattr(settings, "lora_alpha", None) or 32,
            target_modules="all-linear", lora_dropout=0.0, task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, config)
    return model, lora


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
