"""Loading weights safely: a model folder from a run is loaded from safetensors only.

Pickled weights (``pytorch_model.bin``, ``*.pt``) can run arbitrary code when unpickled, so a folder that
has only those is refused before anything is read; callers also pass ``use_safetensors=True`` to
``from_pretrained`` so that transformers never falls back to a pickle.
"""

from __future__ import annotations

from pathlib import Path

from medsift.errors import MedsiftError

# transformers' SAFE_WEIGHTS_NAME and SAFE_WEIGHTS_INDEX_NAME (a sharded checkpoint), written here so that
# this check does not import transformers.
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


def require_safetensors(folder: str | Path) -> None:
    """Refuse a model folder without safetensors model weights (other ``*.safetensors`` files, such as a
    tagger's CRF layer, do not count)."""
    folder = Path(folder)
    if any((folder / name).is_file() for name in SAFE_WEIGHTS):
        return
    pickled = sorted(p.name for p in (*folder.glob("*.bin"), *folder.glob("*.pt"), *folder.glob("*.pth")))
    found = (
        f"found only pickled weights ({', '.join(pickled)}), which medsift never loads"
        if pickled
        else "no weights"
    )
    raise MedsiftError(
        f"no safetensors weights: {found}; re-export the model as model.safetensors", file=folder
    )
