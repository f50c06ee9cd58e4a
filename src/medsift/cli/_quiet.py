"""Quiet mode for scripts: no progress bars, load reports or library warnings from the libraries medsift drives.

With ``-q`` a successful command leaves stderr empty; medsift's own warnings (WARNING: lines, the counts of
long or blank posts) are switched off by the commands themselves.
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
