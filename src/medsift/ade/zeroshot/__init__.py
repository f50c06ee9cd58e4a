"""Zero-shot ADE scorers: runs that score posts without training and join ensembles like any member.

- ``method: nli`` (:mod:`medsift.ade.zeroshot.nli`): the ``zero-shot-classification`` pipeline of ``transformers``
  with any NLI model and hypothesis templates from the config, or (``nli.scorer: similarity``) an embedding model
  scoring a post by its similarity to the same hypotheses (works with the offline e5-small);
- ``method: gliner`` (:mod:`medsift.ade.zeroshot.gliner`): GLiNER entities (the optional ``gliner`` package); a post's
  probability comes from its entities, and entity counts and maximum scores are per-post features for stacking.

A zero-shot run carves the same val and calib rows as every other member of the data section (the same
function), scores them, and is an ``ade-classifier`` run folder: ``predict``, ``serve``, ``report``, ``compare``,
``thresholds`` and ``ensemble`` take it.
"""
