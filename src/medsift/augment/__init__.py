"""Translation augmentation of Task 1 files (``medsift augment``).

- :mod:`medsift.augment.plan`: which rows are translated into which language (pure), and the Clever Hans guard;
- :mod:`medsift.augment.translate`: any ``transformers`` seq2seq translation model (NLLB-200, M2M-100, Marian);
- :mod:`medsift.augment.run`: batched, resumable translation into a file in the official format.
"""

from __future__ import annotations

from medsift.augment.plan import MODES, GuardFinding, balance_findings, plan_augmentation

__all__ = ["MODES", "GuardFinding", "balance_findings", "plan_augmentation"]
