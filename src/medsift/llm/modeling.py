"""Loading a causal LM (hub id, local folder or offline alias), optionally quantised, and its LoRA adapter."""

from __future__ import annotations

from pathlib import Path

from medsift.errors import MedsiftError
from medsift.models import resolve_model

ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLED_ADAPTER = "adapter_model.bin"


def _quantisation(model_cfg):
    """The ``BitsAndBytesConfig`` for QLoRA (4-bit NF4 or 8-bit), or None; refuses where it cannot run."""
    if not (model_cfg.load_in_4bit or model_cfg.load_in_8bit):
        return None
    if model_cfg.load_in_4bit and model_cfg.load_in_8bit:  # the schema refuses it too; models built by hand
        raise MedsiftError("choose model.load_in_4bit or model.load_in_8bit, not both")
    import torch

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise MedsiftError(
            "model.load_in_4bit/8bit needs the 'bitsandbytes' package (pip install 'medsift[qlora]'); "
            "set both to false to load the model unquantised"
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

    quant = _quantisation(model_cfg)  # refused before anything loads
    name = str(resolve_model(model_cfg.name))
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        kwargs = {
            "dtype": "auto" if model_cfg.torch_dtype == "auto" else getattr(torch, model_cfg.torch_dtype)
        }
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


def check_adapter(adapter_dir: Path) -> None:
    """A run's adapter folder must hold ``adapter_config.json`` and safetensors weights.

    A pickled ``adapter_model.bin`` is refused: unpickling a file from a run folder can run code, and medsift
    itself only ever writes safetensors.
    """
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise MedsiftError(
            "no LoRA adapter here (adapter_config.json missing); was this seed's training finished?",
            file=adapter_dir,
        )
    if not (adapter_dir / ADAPTER_WEIGHTS).is_file():
        if (adapter_dir / PICKLED_ADAPTER).exists():
            raise MedsiftError(
                f"refusing the pickled {PICKLED_ADAPTER} (loading pickles can run code); only "
                f"{ADAPTER_WEIGHTS} is loaded. Convert it with peft's save_pretrained(safe_serialization=True)",
                file=adapter_dir,
            )
        raise MedsiftError(f"the adapter has no {ADAPTER_WEIGHTS}", file=adapter_dir)


def load_with_adapter(model_cfg, adapter_dir: Path | None):
    """The base model with the trained adapter merged in for fast inference (the base alone when None).

    The adapter is checked before the base model loads (see :func:`check_adapter`): safetensors only.
    """
    if adapter_dir is not None:
        check_adapter(adapter_dir)
    model, tokenizer = load_base(model_cfg)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
        if not (model_cfg.load_in_4bit or model_cfg.load_in_8bit):
            model = model.merge_and_unload()
    model.eval()
    return model, tokenizer
