"""Load a named model with one clear message when it is not available (offline machines, typos).

A model name is a hub id, a local folder or an ``offline:`` alias (:func:`medsift.models.resolve_model`). On a
machine without the hub (``HF_HUB_OFFLINE=1``, no network), a hub id that is not in the local cache fails deep
inside ``transformers`` with a long traceback; :func:`load_pretrained` turns that into one line that says what
was asked for and what would work here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medsift.errors import MedsiftError


def unavailable_message(name: str, reason: str) -> str:
    """The one line an unavailable model gets: what was named, why it failed, what works offline."""
    from medsift.models.registry import ALIASES

    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    where = (
        "HF_HUB_OFFLINE is set, so only local folders, the hub cache and offline aliases can load"
        if offline
        else "it is not a local folder, not in the hub cache, and the hub could not be reached"
    )
    aliases = ", ".join(f"offline:{a}" for a in sorted(ALIASES))
    return (
        f"model {name!r} is not available here: {where} ({reason}). Download it where the hub is reachable "
        f"(or copy its folder here and give the folder), or use an offline alias: {aliases} "
        "(`medsift models` lists them)"
    )


def load_pretrained(loader: Callable[..., Any], name: str, **kwargs: Any) -> Any:
    """``loader(resolved_name, **kwargs)`` (e.g. ``AutoTokenizer.from_pretrained``), with
    :func:`unavailable_message` instead of a traceback when the model cannot be found."""
    from transformers.utils import logging as hf_logging

    from medsift.models import resolve_model

    resolved = resolve_model(name)
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the library's weight bars stay silent; medsift shows its own
    try:
        return loader(resolved, **kwargs)
    except (OSError, ValueError) as exc:
        if Path(resolved).is_dir():
            raise MedsiftError(
                f"model folder {resolved} cannot be loaded: {' '.join(str(exc).split())[:300]}"
            ) from None
        first = " ".join(str(exc).split())[:160]
        raise MedsiftError(unavailable_message(name, first)) from None
    finally:
        if was:
            hf_logging.enable_progress_bar()
