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
from medsift.impacts.bio import merge_close_spans, to_bio, vote_tags, word_predictions
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
    model: Any, pad_id: int, meta: dict, batch: list, also: Sequence[Any] = ()
) -> list[list[str]]:
    """Per-subword predicted tags for a batch of encoded windows (argmax, or Viterbi with a CRF).

    ``also``: more models of the same labels and tokenizer (the other seeds of a run); their softmax
    probabilities are averaged with ``model``'s and the log of the mean takes the logits' place (soft vote).
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
        if meta.get("o_bias") or meta.get("type_bias"):
            logits = logits.clone()
            # a lower O score: more tokens inside spans (recall for precision)
            logits[..., labels.index("O")] -= float(meta.get("o_bias") or 0.0)
            for i, label in enumerate(labels):  # a higher score for one type's labels
                if label != "O":
                    logits[..., i] += float((meta.get("type_bias") or {}).get(label.split("-", 1)[-1], 0.0))
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
) -> list[list[str]]:
    """BIO tags, one per word, for every post (pre-split words) with one tagger.

    ``also``: further models trained with the same tokenizer, labels and windows (a run's other seeds),
    whose subword probabilities are averaged with ``model``'s before ``o_bias`` and the argmax.

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

    def tag_batch(batch: list[int]) -> list[list[str]]:
        return _batch_tags(model, pad_id, meta, [windows[k] for k in batch], also)

    with (
        torch_threads(1 if workers > 1 else torch.get_num_threads()),
        tqdm(total=len(windows), disable=not progress, desc="tagging", unit="window") as bar,
    ):
        for batch, subs in zip(batches, run_batches(tag_batch, batches, workers), strict=True):
            for k, sub in zip(batch, subs, strict=True):
                w = windows[k]
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
    results = []
    for p, words in enumerate(posts):
        ks = per_post[p]
        tags = merge_windows(
            [windows[k].window for k in ks], [window_tags[k] for k in ks], len(words), counts[p]
        )
        results.append(to_bio(tags, meta["scheme"]))
    return results


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
    def soft_vote(self) -> bool:
        """Whether the members' probabilities can be and are to be averaged (``postprocess.vote: soft``):
        the first member's setting, when every member reads the same subword windows with the same labels
        and none decodes with a CRF; otherwise the members vote on their tags."""
        first = self.members[0][2]
        same = ("labels", "scheme", "max_length", "stride", "word_strategy", "base_model")
        return first.get("vote") == "soft" and all(
            not meta.get("crf") and all(meta.get(k) == first.get(k) for k in same)
            for _, _, meta in self.members
        )

    def tag(
        self, tokens_list: list[list[str]], batch_size: int | None = None, *, progress: bool = False
    ) -> list[list[str]]:
        """BIO tags for pre-split posts: exactly one tag per input token.

        ``batch_size`` caps the windows per batch (default: the token budget alone decides)."""
        if len(self.members) > 1 and self.soft_vote:
            (model, tokenizer, meta), *rest = self.members
            tags = predict_posts(
                model,
                tokenizer,
                meta,
                tokens_list,
                batch_size,
                progress=progress,
                also=[m for m, _, _ in rest],
            )
        else:
            runs = [
                predict_posts(m, t, meta, tokens_list, batch_size, progress=progress)
                for m, t, meta in self.members
            ]
            tags = runs[0] if len(runs) == 1 else [vote_tags(list(col)) for col in zip(*runs, strict=True)]
        tags = postprocess(tags, self.members[0][2])
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
