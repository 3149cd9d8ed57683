"""A tiny random causal LM (llama, or a Mixtral MoE) with smollm2-135m's tokenizer and chat template,
saved to a folder: TRL's real trainers run on it in a fraction of a second per step where the
numbers, not the language, are under test."""

from __future__ import annotations

from pathlib import Path


def tiny_causal_lm(
    folder: Path, moe: bool = False, router_aux_loss_coef: float = 0.5, initializer_range: float = 0.02
) -> str:
    """Write a 1-layer model (hidden size 16) and the smollm2-135m tokenizer to `folder`; returns its path.
    `initializer_range`: the std of the random weights (transformers' default 0.02), and of a head added when the
    folder is loaded as another class (a sequence classifier's score): larger, and the scores spread further."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, MixtralConfig

    from rlaif.weights.resolve import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m"))
    shape = {
        "vocab_size": len(tokenizer),
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 512,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "initializer_range": initializer_range,
    }
    if moe:
        config = MixtralConfig(
            **shape,
            num_local_experts=4,
            num_experts_per_tok=2,
            router_aux_loss_coef=router_aux_loss_coef,
            output_router_logits=False,
        )
    else:
        config = LlamaConfig(**shape)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
