"""Loading a causal LM (hub id, local folder or offline alias), optionally quantised, and its LoRA adapter."""

from __future__ import annotations

from pathlib import Path

from medsift.errors import MedsiftError


def resolve_name(name: str) -> str:
    """Hub ids and folders unchanged; ``offline:`` aliases through ``medsift.models``."""
    try:
        from medsift.models import resolve_model
    except ImportError as exc:
        if name.startswith("offline:"):
            raise MedsiftError(
                f"offline alias '{name}' needs medsift.models, which is not installed"
            ) from exc
        return name
    return str(resolve_model(name))


def _quantisation(model_cfg):
    if not (model_cfg.load_in_4bit or model_cfg.load_in_8bit):
        return None
    import torch

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise MedsiftError(
            "model.load_in_4bit/8bit needs the 'bitsandbytes' package (pip install bitsandbytes)"
        ) from exc
    if not torch.cuda.is_available():
        raise MedsiftError("model.load_in_4bit/8bit needs a CUDA GPU; set both to false on this machine")
    from transformers import BitsAndBytesConfig

    if model_cfg.load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
    )


def load_base(model_cfg):
    """(model, tokenizer) for ``model_cfg``; the tokenizer gets a pad token if it has none."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = resolve_name(model_cfg.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        kwargs = {
            "dtype": "auto" if model_cfg.torch_dtype == "auto" else getattr(torch, model_cfg.torch_dtype)
        }
        quant = _quantisation(model_cfg)
        if quant is not None:
            kwargs.update(quantization_config=quant, device_map="auto")
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except OSError as exc:
        raise MedsiftError(f"cannot load causal LM '{model_cfg.name}': {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if quant is None and torch.cuda.is_available():
        model = model.to("cuda")
    return model, tokenizer


def add_lora(model, lora_cfg, quantised: bool):
    """Wrap ``model`` with a fresh LoRA adapter; only its parameters train."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quantised:
        model = prepare_model_for_kbit_training(model)
    config = LoraConfig(
        r=lora_cfg.r,
        lora_alpha=lora_cfg.alpha,
        lora_dropout=lora_cfg.dropout,
        target_modules=lora_cfg.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def load_with_adapter(model_cfg, adapter_dir: Path | None):
    """The base model with the trained adapter merged in for fast inference (or the base alone)."""
    model, tokenizer = load_base(model_cfg)
    if adapter_dir is not None and (Path(adapter_dir) / "adapter_config.json").exists():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
        if not (model_cfg.load_in_4bit or model_cfg.load_in_8bit):
            model = model.merge_and_unload()
    model.eval()
    return model, tokenizer
