"""Prediction with trained impact taggers: ``SpanTagger`` (Python API, also behind the HTTP service) and
``predict_file`` (what ``medsift predict RUN_DIR FILE`` calls).

Every post is windowed (:mod:`medsift.impacts.windows`), so posts of any length get exactly one tag per
input word; several seeds (or several runs) are combined by a token-level majority vote followed by BIO
repair (:func:`medsift.impacts.bio.vote_tags`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import torch

from medsift.errors import MedsiftError
from medsift.impacts.bio import to_bio, vote_tags, word_predictions
from medsift.impacts.model import encode_windows, load_tagger, progress_bars
from medsift.impacts.windows import merge_windows
from medsift.impacts.words import split_words


class Span(NamedTuple):
    """A predicted span in raw text: ``text[start_char:end_char]``."""

    label: str
    start_char: int
    end_char: int
    text: str


def _batch_tags(model: Any, tokenizer: Any, meta: dict, batch: list) -> list[list[str]]:
    """Per-subword predicted tags for a batch of encoded windows (argmax, or Viterbi with a CRF)."""
    labels = meta["labels"]
    padded = tokenizer.pad({"input_ids": [w.input_ids for w in batch]}, return_tensors="pt")
    device = next(model.parameters()).device
    input_ids = padded["input_ids"].to(device)
    attention_mask = padded["attention_mask"].to(device)
    with torch.inference_mode():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    out: list[list[str]] = []
    if meta.get("crf"):
        valid = torch.zeros(input_ids.shape, dtype=torch.bool, device=device)
        for row, w in enumerate(batch):
            for pos, wid in enumerate(w.word_ids):
                valid[row, pos] = wid is not None
        paths = model.decode(logits, valid)
        for w, path in zip(batch, paths, strict=True):
            ids = iter(path)
            out.append([labels[next(ids)] if wid is not None else "O" for wid in w.word_ids])
        return out
    best = logits.argmax(-1).tolist()
    for row, w in enumerate(batch):
        out.append([labels[i] for i in best[row][: len(w.input_ids)]])
    return out


def predict_posts(
    model: Any, tokenizer: Any, meta: dict, posts: list[list[str]], batch_size: int = 16
) -> list[list[str]]:
    """BIO tags, one per word, for every post (pre-split words) with one tagger."""
    windows, counts = encode_windows(tokenizer, posts, meta["max_length"], meta["stride"])
    # Similar lengths together: less padding, same results (padding is masked).
    order = sorted(range(len(windows)), key=lambda k: len(windows[k].input_ids))
    window_tags: list[list[str | None] | None] = [None] * len(windows)
    for lo in range(0, len(order), batch_size):
        chunk = [windows[k] for k in order[lo : lo + batch_size]]
        for k, sub in zip(
            order[lo : lo + batch_size], _batch_tags(model, tokenizer, meta, chunk), strict=True
        ):
            w = windows[k]
            n = w.window[1] - w.window[0]
            window_tags[k] = word_predictions(
                sub, w.word_ids, n, meta.get("word_strategy", "first"), missing=None
            )
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

    def tag(self, tokens_list: list[list[str]], batch_size: int = 16) -> list[list[str]]:
        """BIO tags for pre-split posts: exactly one tag per input token."""
        runs = [predict_posts(m, t, meta, tokens_list, batch_size) for m, t, meta in self.members]
        tags = runs[0] if len(runs) == 1 else [vote_tags(list(col)) for col in zip(*runs, strict=True)]
        for words, post_tags in zip(tokens_list, tags, strict=True):
            if len(words) != len(post_tags):  # a broken invariant, not a user error
                raise RuntimeError(f"tagger returned {len(post_tags)} tags for {len(words)} tokens")
        return tags

    def tag_texts(self, texts: list[str], batch_size: int = 16) -> list[list[Span]]:
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


def _read_input(path: Path) -> tuple[list[str], list[list[str]], list[list[str]] | None, list | None]:
    """(ids, tokens, gold tags or None, word offsets for raw text or None) from CSV / TXT / JSONL."""
    suffix = path.suffix.lower()
    if suffix in (".txt", ".jsonl", ".json", ".ndjson"):
        if suffix == ".txt":
            from medsift.io import read_posts

            numbers, texts = read_posts(path)
            ids = [str(n) for n in numbers]
        else:
            from medsift.io import read_texts

            frame = read_texts(path)
            ids, texts = frame["id"].astype(str).tolist(), frame["text"].tolist()
        words = [split_words(t) for t in texts]
        return ids, [[w.text for w in ws] for ws in words], None, [texts, words]
    from medsift.io import read_impacts

    frame = read_impacts(path)
    gold = frame["ner_tags"].tolist()
    return (
        frame["ID"].tolist(),
        frame["tokens"].tolist(),
        (gold if gold and gold[0] is not None else None),
        None,
    )


def _span_records(ids, tokens, tags, raw) -> list[dict]:
    from medsift.scoring.impacts import spans_from_bio

    records = []
    for n, (ident, words, post_tags) in enumerate(zip(ids, tokens, tags, strict=True)):
        spans = []
        for kind, start, end in spans_from_bio(post_tags):
            span: dict[str, Any] = {"label": kind, "start_token": start, "end_token": end}
            if raw is not None:
                text, ws = raw[0][n], raw[1][n]
                span.update(start_char=ws[start].start, end_char=ws[end - 1].end)
                span["text"] = text[span["start_char"] : span["end_char"]]
            else:
                span["text"] = " ".join(words[start:end])
            spans.append(span)
        records.append({"ID": ident, "spans": spans})
    return records


def predict_file(
    run_dir: Path,
    input_path: Path,
    output: Path,
    *,
    spans_json: Path | None = None,
    batch_size: int = 16,
    quiet: bool = False,
) -> dict:
    """Tag a file and write ``ID,predicted_ner_tags``; return counts, and strict/relaxed scores when labelled.

    Returns ``{"rows", "tokens", "spans", "members"}`` plus ``"scores"`` (``ImpactScores.to_dict()``: strict and
    relaxed, as ``medsift score`` prints them) when the input carries gold ``ner_tags``.

    ``input_path``: the official CSV (``ID,tokens`` with optional ``ner_tags``), plain ``.txt`` (one post
    per non-empty line; ID = line number) or ``.jsonl`` with ``text`` (and optional ``id``). ``quiet`` is
    accepted for symmetry with training; prediction shows no progress bar.
    """
    from medsift.io import write_impacts_submission
    from medsift.io.atomic import atomic_write_text

    input_path, output = Path(input_path), Path(output)
    ids, tokens, gold, raw = _read_input(input_path)
    with progress_bars(not quiet):
        tagger = SpanTagger.from_run(run_dir)
    tags = tagger.tag(tokens, batch_size=batch_size)
    for row, (words, post_tags) in enumerate(zip(tokens, tags, strict=True), start=1):
        if len(words) != len(post_tags):
            raise MedsiftError(
                f"{len(words)} tokens but {len(post_tags)} predicted tags", file=input_path, row=row
            )
    write_impacts_submission(output, ids, tags, token_lists=tokens)
    if spans_json is not None:
        records = _span_records(ids, tokens, tags, raw)
        atomic_write_text(spans_json, json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    result: dict[str, Any] = {
        "rows": len(ids),
        "tokens": sum(len(t) for t in tokens),
        "spans": sum(sum(1 for t in post if t.startswith("B-")) for post in tags),
        "members": len(tagger.members),
    }
    if gold is not None:
        result["scores"] = score_tags(gold, tags)
    return result


def score_tags(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Strict and relaxed Task 7 scores as a plain dict (``ImpactScores.to_dict``)."""
    from medsift.scoring.impacts import ImpactScores, relaxed_scores, strict_scores

    return ImpactScores(strict_scores(gold, pred), relaxed_scores(gold, pred), len(gold)).to_dict()
