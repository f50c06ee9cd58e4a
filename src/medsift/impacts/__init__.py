"""Task 7 impact span tagger: BIO/IO alignment, repair, windows and word splitting (pure), training, prediction.

Import the heavy parts from their modules: ``medsift.impacts.train.train``,
``medsift.impacts.predict.predict_file`` and ``medsift.impacts.predict.SpanTagger``.
"""

from __future__ import annotations
