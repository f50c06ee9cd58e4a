"""Quiet mode for scripts: no progress bars and no load reports from the libraries medsift drives."""

from __future__ import annotations

import os


def silence_libraries() -> None:
    os.environ["TQDM_DISABLE"] = "1"
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
