"""Prediction with trained impact taggers: ``SpanTagger`` (Python API, also behind the HTTP service); files go
through :func:`medsift.engine.tagger_stream.predict_file` (what ``medsift predict RUN_DIR FILE`` calls).

Every post is windowed (:mod:`medsift.impacts.windows`), so posts of any length get exactly one tag per
input word; several seeds (or several runs) are combined by a token-level majority vote followed by BIO
repair (:func:`medsift.impacts.bio.vote_tags`), or, with ``postprocess.vote: soft``, the seeds of one run by
their averaged subword probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from medsift.batching import (
    MAX_BATCH,
    default_batch_tokens,
    default_workers,
    pad_batch,
    run_batches,
    token_budget_batches,
    torch_device,
    torch_threads,
)
from medsift.errors import MedsiftError
from medsift.impacts.bio import (
    extend_spans,
    first_subword_positions,
    io_to_bio,
    merge_close_spans,
    tag_class,
    to_bio,
    vote_tags,
    word_predictions,
)
from medsift.impacts.model import encode_windows, load_tagger
from medsift.impacts.windows import merge_windows
from medsift.impacts.words import split_words


class Span(NamedTuple):
    """A predicted span in raw text: ``text[start_char:end_char]``."""

    label: str
    start_char: int
    end_char: int
    text: str


def _batch_tags(
    model: Any,
    pad_id: int,
    meta: dict,
    batch: list,
    also: Sequence[Any] = (),
    probs_out: list | None = None,
) -> list[list[str]]:
    """Per-subword predicted tags for a batch of encoded windows (argmax, or Viterbi with a CRF).

    ``also``: more models of the same labels and tokenizer (the other seeds of a run); their softmax
    probabilities are averaged with ``model``'s and the log of the mean takes the logits' place (soft vote).
    ``probs_out``: a list that receives each window's subword probabilities (before any bias), one
    ``(subwords, labels)`` array per window.
    """
    labels = meta["labels"]
    ids, mask = pad_batch([w.input_ids for w in batch], pad_id)
    device = torch_device(model)
    input_ids, attention_mask = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
    with torch.inference_mode():  # per call: inference mode is thread-local
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (batch, seq, labels)
        if also:
            probs = logits.softmax(-1)
            for other in also:
                probs += other(input_ids=input_ids, attention_mask=attention_mask).logits.softmax(-1)
            logits = (probs / (1 + len(also))).log()
        if probs_out is not None:
            scores = logits.softmax(-1).float().cpu().numpy()
            probs_out.extend(scores[row, : len(w.input_ids)] for row, w in enumerate(batch))
        bias = label_bias(labels, meta)
        if any(bias):
            logits = logits + torch.tensor(bias, dtype=logits.dtype, device=logits.device)
        if meta.get("crf"):
            valid = torch.zeros(input_ids.shape, dtype=torch.bool)
            for row, w in enumerate(batch):
                valid[row, : len(w.word_ids)] = torch.tensor([wid is not None for wid in w.word_ids])
            paths = model.decode(logits, valid.to(device))
    out: list[list[str]] = []
    if meta.get("crf"):
        for w, path in zip(batch, paths, strict=True):
            ids_iter = iter(path)
            out.append([labels[next(ids_iter)] if wid is not None else "O" for wid in w.word_ids])
        return out
    best = logits.argmax(-1).tolist()
    for row, w in enumerate(batch):
        out.append([labels[i] for i in best[row][: len(w.input_ids)]])
    return out


def predict_posts(
    model: Any,
    tokenizer: Any,
    meta: dict,
    posts: list[list[str]],
    batch_size: int | None = None,
    *,
    batch_tokens: int | None = None,
    workers: int | None = None,
    progress: bool = False,
    also: Sequence[Any] = (),
    with_probs: bool = False,
) -> Any:
    """BIO tags, one per word, for every post (pre-split words) with one tagger.

    ``also``: further models trained with the same tokenizer, labels and windows (a run's other seeds),
    whose subword probabilities are averaged with ``model``'s before ``o_bias`` and the argmax.
    ``with_probs``: return ``(tags, probs)``, where ``probs[p]`` is a ``(words, 1 + types)`` array of each
    word's probabilities (its first subword's, before any bias) of ``O`` and of each type
    (:func:`label_types` order), taken from the same window as its tag.

    Windows are batched by a token budget, longest first (``batch_size`` caps the windows per batch), and on
    a CPU one worker per core runs whole batches (:mod:`medsift.batching`); padding is masked, so the
    batching never changes a tag.
    """
    windows, counts = encode_windows(tokenizer, posts, meta["max_length"], meta["stride"])
    device = torch_device(model)
    batch_tokens = batch_tokens or default_batch_tokens(device)
    workers = workers or getattr(model, "workers", None) or default_workers(device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    lengths = [len(w.input_ids) for w in windows]
    batches = list(token_budget_batches(lengths, batch_tokens, batch_size or MAX_BATCH))
    window_tags: list[list[str | None] | None] = [None] * len(windows)
    window_probs: list[list[Any] | None] = [None] * len(windows)
    to_types = _type_matrix(meta["labels"]) if with_probs else None

    def tag_batch(batch: list[int]) -> tuple[list[list[str]], list]:
        probs: list = []
        tags = _batch_tags(
            model, pad_id, meta, [windows[k] for k in batch], also, probs if with_probs else None
        )
        return tags, probs

    with (
        torch_threads(1 if workers > 1 else torch.get_num_threads()),
        tqdm(total=len(windows), disable=not progress, desc="tagging", unit="window") as bar,
    ):
        for batch, (subs, sub_probs) in zip(batches, run_batches(tag_batch, batches, workers), strict=True):
            for n, (k, sub) in enumerate(zip(batch, subs, strict=True)):
                w = windows[k]
                if with_probs:
                    firsts = first_subword_positions(w.word_ids)
                    typed = sub_probs[n] @ to_types
                    window_probs[k] = [
                        typed[firsts[i]] if i in firsts else None for i in range(w.window[1] - w.window[0])
                    ]
                window_tags[k] = word_predictions(
                    sub,
                    w.word_ids,
                    w.window[1] - w.window[0],
                    meta.get("word_strategy", "first"),
                    missing=None,
                )
            bar.update(len(batch))
    per_post: list[list[int]] = [[] for _ in posts]
    for k, w in enumerate(windows):
        per_post[w.post].append(k)
    results, post_probs = [], []
    for p, words in enumerate(posts):
        ks = per_post[p]
        spans = [windows[k].window for k in ks]
        tags = merge_windows(spans, [window_tags[k] for k in ks], len(words), counts[p])
        results.append(to_bio(tags, meta["scheme"]))
        if with_probs:
            nothing = np.eye(to_types.shape[1])[0]  # a word no window could read: O
            chosen = merge_windows(spans, [window_probs[k] for k in ks], len(words), counts[p], nothing)
            post_probs.append(np.array(chosen).reshape(len(words), to_types.shape[1]))
    return (results, post_probs) if with_probs else results


def decode_word_probs(probs: np.ndarray, types: Sequence[str], meta: dict) -> list[str]:
    """BIO tags from word probabilities (``O``, then ``types``) under the run's ``o_bias`` and ``type_bias``:
    the likeliest class per word, runs of one class read as one span (IO; how members with different
    tokenizers vote softly)."""
    classes = ["O", *types]
    scores = np.log(np.clip(probs, 1e-12, None)) + np.array(label_bias(classes, meta))
    return io_to_bio([classes[int(i)] for i in scores.argmax(1)])


def label_bias(labels: Sequence[str], meta: dict) -> list[float]:
    """What each label's score gets before the argmax: ``-o_bias`` for ``O`` (more tokens inside spans, recall
    for precision) and ``type_bias[X]`` for the labels of type X."""
    type_bias = meta.get("type_bias") or {}
    return [
        -float(meta.get("o_bias") or 0.0) if label == "O" else float(type_bias.get(tag_class(label), 0.0))
        for label in labels
    ]


def label_types(labels: Sequence[str]) -> list[str]:
    """The entity types of a label list, in the order they first appear (``O`` left out)."""
    return list(dict.fromkeys(tag_class(label) for label in labels if label != "O"))


def _type_matrix(labels: Sequence[str]) -> np.ndarray:
    """``(labels, 1 + types)``: sums label probabilities into ``O`` and per-type probabilities."""
    types = label_types(labels)
    matrix = np.zeros((len(labels), 1 + len(types)), dtype=np.float32)
    for i, label in enumerate(labels):
        matrix[i, 0 if label == "O" else 1 + types.index(tag_class(label))] = 1.0
    return matrix


def postprocess(tag_lists: list[list[str]], meta: dict) -> list[list[str]]:
    """The run's span clean-up (``postprocess.merge_gap``, kept in ``tagger.json``) applied to BIO tags."""
    gap = int(meta.get("merge_gap", 0))
    return [merge_close_spans(tags, gap) for tags in tag_lists] if gap > 0 else tag_lists


class SpanTagger:
    """One or more trained taggers (seeds) that tag posts; several are combined by a token-level vote."""

    def __init__(self, members: list[tuple[Any, Any, dict]]):
        if not members:
            raise MedsiftError("a SpanTagger needs at least one trained model")
        self.members = members

    @classmethod
    def from_model_dir(cls, folder: str | Path) -> SpanTagger:
        """One saved tagger folder (``seed-<N>/model``)."""
        return cls([load_tagger(Path(folder))])

    @classmethod
    def from_run(cls, run_dir: str | Path) -> SpanTagger:
        """Every finished seed of a run made by :func:`medsift.impacts.train.train` (or one model folder)."""
        from medsift.runs import RunManifest
        from medsift.training import seed_is_done

        run_dir = Path(run_dir)
        if (run_dir / "tagger.json").exists():
            return cls.from_model_dir(run_dir)
        manifest = RunManifest.load(run_dir)
        if manifest.kind == "impacts-ensemble":
            from medsift.impacts.ensemble import member_runs

            return cls.from_runs(member_runs(run_dir))
        if manifest.task != "impacts":
            raise MedsiftError(f"this run is for task '{manifest.task}', not impacts", file=run_dir)
        seeds = [run_dir / f"seed-{s}" for s in manifest.seeds]
        done = [s for s in seeds if seed_is_done(s)]
        if not done:
            raise MedsiftError("no finished seed in this run", file=run_dir)
        return cls([load_tagger(s / "model") for s in done])

    @classmethod
    def from_runs(cls, run_dirs: list[str | Path]) -> SpanTagger:
        """Every finished seed of several runs (e.g. a BIO and an IO run), combined by the token-level vote."""
        return cls([m for run_dir in run_dirs for m in cls.from_run(run_dir).members])

    @property
    def labels(self) -> list[str]:
        return list(self.members[0][2]["labels"])

    @property
    def types(self) -> list[str]:
        return label_types(self.labels)

    @property
    def soft_vote(self) -> bool:
        """Whether the members' probabilities are to be averaged (``postprocess.vote: soft``): the first
        member's setting, when no member decodes with a CRF and all tag the same entity types; otherwise the
        members vote on their tags. Members that read the same subword windows average their subword
        probabilities; members that do not (other tokenizers or windows) average their word probabilities."""
        first = self.members[0][2]
        return first.get("vote") == "soft" and all(
            not meta.get("crf") and label_types(meta["labels"]) == self.types for _, _, meta in self.members
        )

    def _groups(self) -> list[list[tuple[Any, Any, dict]]]:
        """The members in groups that read the same subword windows with the same labels."""
        same = ("labels", "scheme", "max_length", "stride", "word_strategy", "base_model")
        groups: dict[tuple, list] = {}
        for member in self.members:
            groups.setdefault(tuple(str(member[2].get(k)) for k in same), []).append(member)
        return list(groups.values())

    def tag(
        self, tokens_list: list[list[str]], batch_size: int | None = None, *, progress: bool = False
    ) -> list[list[str]]:
        """BIO tags for pre-split posts: exactly one tag per input token.

        ``batch_size`` caps the windows per batch (default: the token budget alone decides)."""
        first = self.members[0][2]
        extend = float(first.get("extend") or 0.0)
        if extend and any(label_types(meta["labels"]) != self.types for _, _, meta in self.members):
            raise MedsiftError("postprocess.extend needs members with the same entity types")
        groups = self._groups()
        if len(self.members) > 1 and self.soft_vote:
            runs = []
            for (model, tokenizer, meta), *rest in groups:
                runs.append(
                    predict_posts(
                        model,
                        tokenizer,
                        meta,
                        tokens_list,
                        batch_size,
                        progress=progress,
                        also=[m for m, _, _ in rest],
                        with_probs=bool(extend) or len(groups) > 1,
                    )
                )
            if len(groups) == 1:
                tags, probs = runs[0] if extend else (runs[0], None)
            else:  # word probabilities, each group weighted by its number of members
                sizes = [len(g) for g in groups]
                probs = [
                    sum(n * p for n, p in zip(sizes, col, strict=True)) / sum(sizes)
                    for col in zip(*(r[1] for r in runs), strict=True)
                ]
                tags = [decode_word_probs(p, self.types, first) for p in probs]
        else:
            runs = [
                predict_posts(m, t, meta, tokens_list, batch_size, progress=progress, with_probs=bool(extend))
                for m, t, meta in self.members
            ]
            if extend:  # the members' word probabilities averaged
                probs = [sum(col) / len(col) for col in zip(*(r[1] for r in runs), strict=True)]
                runs = [r[0] for r in runs]
            tags = runs[0] if len(runs) == 1 else [vote_tags(list(col)) for col in zip(*runs, strict=True)]
        if extend:
            tags = [extend_spans(t, p, self.types, extend) for t, p in zip(tags, probs, strict=True)]
        tags = postprocess(tags, first)
        for words, post_tags in zip(tokens_list, tags, strict=True):
            if len(words) != len(post_tags):  # a broken invariant, not a user error
                raise RuntimeError(f"tagger returned {len(post_tags)} tags for {len(words)} tokens")
        return tags

    def tag_texts(self, texts: list[str], batch_size: int | None = None) -> list[list[Span]]:
        """Spans with character offsets in raw texts (split into words first)."""
        from medsift.scoring.impacts import spans_from_bio

        words = [split_words(t) for t in texts]
        tags = self.tag([[w.text for w in ws] for ws in words], batch_size)
        out = []
        for text, ws, post_tags in zip(texts, words, tags, strict=True):
            spans = []
            for kind, start, end in spans_from_bio(post_tags):
                a, b = ws[start].start, ws[end - 1].end
                spans.append(Span(kind, a, b, text[a:b]))
            out.append(spans)
        return out


def score_tags(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Strict and relaxed Task 7 scores as a plain dict (``ImpactScores.to_dict``)."""
    from medsift.scoring.impacts import ImpactScores, relaxed_scores, strict_scores

    return ImpactScores(strict_scores(gold, pred), relaxed_scores(gold, pred), len(gold)).to_dict()
