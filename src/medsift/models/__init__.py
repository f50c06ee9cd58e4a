"""Model-name resolution: hub id / local folder / ``offline:`` alias (see docs/offline-models.md).

``resolve_model(name)`` returns what to hand to ``from_pretrained``. Importing this package is cheap:
torch and transformers are imported only when an alias is prepared.
"""

from __future__ import annotations

from medsift.models.registry import (
    ALIASES,
    PREFIX,
    AliasStatus,
    ModelAlias,
    alias_status,
    cache_root,
    get_alias,
    list_models,
    model_dir,
    prepare_model,
    resolve_model,
)

__all__ = [
    "ALIASES",
    "PREFIX",
    "AliasStatus",
    "ModelAlias",
    "alias_status",
    "cache_root",
    "get_alias",
    "list_models",
    "model_dir",
    "prepare_model",
    "resolve_model",
]
