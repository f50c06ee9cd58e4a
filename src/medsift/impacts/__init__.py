"""Task 7 impact span tagger: BIO/IO alignment, repair, windows and word splitting (pure), training, prediction.

Import the heavy parts from their modules: ``medsift.impacts.train.train``,
and ``medsift.impacts.predict.SpanTagger`` (files: ``medsift.engine.tagger_stream.predict_file``).
"""

from __future__ import annotations
