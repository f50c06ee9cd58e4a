"""The inference engine behind ``predict``, the Python API and the service.

- :mod:`medsift.engine.backends`: one loader for every backend (``torch`` or ``onnx``) of an ADE run.
- :mod:`medsift.engine.onnx`: export a run's seed models to ONNX (optionally int8), check them against torch,
  and score with ONNX Runtime through the same encoding and token-budget batching as the torch path.
- :mod:`medsift.engine.streaming`: score files larger than memory chunk by chunk, outputs in input order.
- :mod:`medsift.engine.ray_engine`: bulk scoring of a folder of shards on Ray Data.
"""

from __future__ import annotations

from medsift.engine.backends import BACKENDS, load_classifier

__all__ = ["BACKENDS", "load_classifier"]
