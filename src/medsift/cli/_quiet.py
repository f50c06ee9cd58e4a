"""Quiet mode for scripts: no progress bars, load reports or library warnings from the libraries medsift drives.

``predict -q`` also drops its own notes (rows written, long and blank posts), so that a successful run
leaves stderr empty; WARNING: lines about a result that may be wrong are never silenced.
"""

from __future__ import annotations

import os
import warnings

# Libraries whose warnings are about their own future, not the user's data (e.g. peft's FutureWarnings).
_LIBRARIES = r"(torch|transformers|peft|accelerate|tokenizers|huggingface_hub|onnxruntime|ray)(\.|$)"


def silence_libraries() -> None:
    os.environ["TQDM_DISABLE"] = "1"
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=_LIBRARIES)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
