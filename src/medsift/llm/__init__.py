"""LLM path: LoRA instruction tuning of a causal LM for ADE (first-token confidence) and impact spans
(generation, a tolerant parser, constrained decoding).

Pure parts (``prompts``, ``parse``, ``constrained`` state machine, ``chunks``) need no model; ``train`` and
``predict`` hold the entry points the CLI calls.
"""

from __future__ import annotations

from pathlib import Path


def zero_shot_run(
    model: str, task: str, out: str | Path, *, model_options: dict | None = None, **sections
) -> Path:
    """Write a run directory for ``model`` used as-is (no adapter), so ``predict_file`` can score it."""
    from medsift.llm.train import zero_shot_run as _zero_shot

    return _zero_shot(model, task, out, model_options=model_options, **sections)


__all__ = ["zero_shot_run"]
