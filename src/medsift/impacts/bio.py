"""BIO / IO tag utilities for the impact tagger (pure: no model needed).

Schemes
-------
``bio``: the official tags (``O``, ``B-X``, ``I-X``). ``io``: the "simplified labels" of the papers: each
word carries its class only (``O`` or ``X``); spans are rebuilt into BIO afterwards (:func:`io_to_bio`), so two
adjacent spans of the same type merge into one — the price of the simpler label set.

Subword alignment (:func:`align_labels`) follows the papers: special tokens get ``-100`` (ignored by the
loss); in ``bio`` the first subword of a word gets the word's tag and later subwords get ``I-X`` when the
word's tag is ``B-X``, else the same tag; in ``io`` every subword gets the word's class. Words are found
through the tokenizer's ``word_ids`` only, never by matching strings, so WordPiece and SentencePiece
tokenizers behave the same.

Repair rule (:func:`repair_bio`): an ``I-X`` that follows ``O``, the start of the sequence, or a tag of
another type becomes ``B-X``. This is the conlleval reading, the one both official scores already apply
(strict: seqeval's default mode; relaxed: ``spans_from_bio``), so repair never changes a score; it only
makes the written tags well formed. Dropping such tags instead would throw away predicted impact tokens
that the scorer would have counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

Scheme = Literal["bio", "io"]
WordStrategy = Literal["first", "vote"]
IGNORE = -100


def tag_class(tag: str) -> str:
    """``B-X``/``I-X`` → ``X``; ``O`` and IO classes are returned unchanged."""
    if len(tag) > 2 and tag[:2] in ("B-", "I-"):
        return tag[2:]
    return tag


def entity_types(tag_lists: Sequence[Sequence[str]]) -> list[str]:
    """The sorted entity types found in BIO (or IO) tag lists."""
    kinds = {tag_class(t) for tags in tag_lists for t in tags}
    kinds.discard("O")
    return sorted(kinds)


def label_list(types: Sequence[str], scheme: Scheme) -> list[str]:
    """The model's label set for ``types``: ``O`` first, then ``B-X, I-X`` per type (bio) or ``X`` (io)."""
    if scheme == "bio":
        return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]
    if scheme == "io":
        return ["O", *types]
    raise ValueError(f"unknown scheme {scheme!r} (bio or io)")


def to_scheme(tags: Sequence[str], scheme: Scheme) -> list[str]:
    """Word tags (BIO) as the training scheme wants them: unchanged for bio, classes for io."""
    return list(tags) if scheme == "bio" else [tag_class(t) for t in tags]


def align_labels(
    word_tags: Sequence[str], word_ids: Sequence[int | None], scheme: Scheme, label2id: dict[str, int]
) -> list[int]:
    """Label ids per subword from word tags (already in ``scheme``) and the tokenizer's ``word_ids``."""
    out: list[int] = []
    previous: int | None = None
    for wid in word_ids:
        if wid is None:
            out.append(IGNORE)
            continue
        tag = word_tags[wid]
        if scheme == "bio" and wid == previous and tag.startswith("B-"):
            tag = "I-" + tag[2:]
        out.append(label2id[tag])
        previous = wid
    return out


def first_subword_positions(word_ids: Sequence[int | None]) -> dict[int, int]:
    """Word index → position of its first subword (words with no subword are absent)."""
    first: dict[int, int] = {}
    for pos, wid in enumerate(word_ids):
        if wid is not None and wid not in first:
            first[wid] = pos
    return first


def word_predictions(
    subword_tags: Sequence[str],
    word_ids: Sequence[int | None],
    n_words: int,
    strategy: WordStrategy = "first",
    missing: str | None = "O",
) -> list[str | None]:
    """Word-level tags from per-subword predicted tags.

    ``first``: the first subword's tag. ``vote``: the majority class over the word's subwords (ties go to
    the first subword's class); the prefix is the first subword's when it has that class, else ``I-``
    (repair later turns a stray ``I-`` into ``B-``). A word with no subword at all (an empty string,
    characters the tokenizer drops, or a word truncated out of a window) gets ``missing``: ``O`` by default
    (nothing the model saw to tag), ``None`` to let :func:`~medsift.impacts.windows.merge_windows` take it
    from another window.
    """
    pieces: list[list[str]] = [[] for _ in range(n_words)]
    for tag, wid in zip(subword_tags, word_ids, strict=True):
        if wid is not None and wid < n_words:
            pieces[wid].append(tag)
    out: list[str | None] = []
    for tags in pieces:
        if not tags:
            out.append(missing)
        elif strategy == "first" or len(tags) == 1:
            out.append(tags[0])
        else:
            out.append(_vote_word(tags))
    return out


def _vote_word(tags: list[str]) -> str:
    counts = Counter(tag_class(t) for t in tags)
    first_class = tag_class(tags[0])
    best = max(counts.values())
    winner = first_class if counts[first_class] == best else next(c for c in counts if counts[c] == best)
    if winner == first_class:
        return tags[0]
    if winner == "O":
        return "O"
    return winner if not _is_bio(tags) else f"I-{winner}"


def _is_bio(tags: Sequence[str]) -> bool:
    return any(t[:2] in ("B-", "I-") for t in tags)


def io_to_bio(classes: Sequence[str]) -> list[str]:
    """IO classes → BIO: a run of the same class is one span (``B-X`` then ``I-X``)."""
    out: list[str] = []
    previous = "O"
    for c in classes:
        c = tag_class(c)
        if c == "O":
            out.append("O")
        else:
            out.append(("I-" if c == previous else "B-") + c)
        previous = c
    return out


def repair_bio(tags: Sequence[str]) -> list[str]:
    """Make a BIO sequence well formed: an ``I-X`` after ``O``/start/another type becomes ``B-X``.

    See the module docstring for why this rule (the conlleval reading) and not dropping the tag. Tags that
    carry no prefix (IO classes) are converted with :func:`io_to_bio` semantics.
    """
    out: list[str] = []
    previous = "O"
    for tag in tags:
        if tag == "O":
            out.append("O")
            previous = "O"
            continue
        kind = tag_class(tag)
        if tag.startswith("B-"):
            out.append(tag)
        else:
            out.append(("I-" if previous == kind else "B-") + kind)
        previous = kind
    return out


def vote_tags(runs: Sequence[Sequence[str]]) -> list[str]:
    """Token-level majority vote over several runs' BIO tags for one post, then :func:`repair_bio`.

    Each position takes the majority class (``O`` or a type); ties go to the earliest run's class, so a
    single run is returned unchanged. The prefix is ``B-`` when most runs voting for that class open a span
    there, else ``I-``; repair then fixes any ``I-`` the vote left after ``O`` or another type.
    """
    if not runs:
        raise ValueError("vote_tags needs at least one run")
    length = len(runs[0])
    if any(len(r) != length for r in runs):
        raise ValueError(f"runs disagree on the number of tokens: {[len(r) for r in runs]}")
    out: list[str] = []
    for i in range(length):
        column = [r[i] for r in runs]
        classes = [tag_class(t) for t in column]
        counts = Counter(classes)
        best = max(counts.values())
        winner = next(c for c in classes if counts[c] == best)
        if winner == "O":
            out.append("O")
            continue
        opens = sum(1 for t in column if t == f"B-{winner}")
        continues = sum(1 for t in column if tag_class(t) == winner) - opens
        out.append(("B-" if opens > continues else "I-") + winner)
    return repair_bio(out)


def merge_close_spans(tags: Sequence[str], gap: int) -> list[str]:
    """Join spans of one type that at most ``gap`` ``O`` tokens separate into one span (BIO in, BIO out).

    The tokens between them join the span. ``gap=0`` joins only touching spans (``B-X B-X``), as IO does.
    Spans are read with the scorers' rule (:func:`repair_bio` first). The relaxed metric rewards a span cut
    in two by one missed token being whole again; whether that pays is a question for cross-validation.
    """
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    out = repair_bio(tags)
    last_type, last_end = None, -1  # type and end (exclusive) of the previous span
    i = 0
    while i < len(out):
        if out[i] == "O":
            i += 1
            continue
        kind, start = tag_class(out[i]), i
        i += 1
        while i < len(out) and out[i] == f"I-{kind}":
            i += 1
        if kind == last_type and start - last_end <= gap:
            out[last_end:i] = [f"I-{kind}"] * (i - last_end)
        last_type, last_end = kind, i
    return out


def extend_spans(
    tags: Sequence[str], type_probs: Sequence[Sequence[float]], types: Sequence[str], threshold: float
) -> list[str]:
    """Grow every span into the ``O`` words next to it whose probability of the span's type is at least
    ``threshold`` (hysteresis: the argmax decides where spans are, a lower bar how far they reach).

    ``type_probs[i]`` holds word ``i``'s probabilities in the order ``O``, then ``types``. A span grows only
    through words that were ``O``; a word two types reach goes to the likelier one; spans of one type that
    grow into each other become one, while spans that touched before stay apart. The relaxed metric counts
    overlapping tokens, and the taggers' spans are shorter than the gold ones (docs/benchmarks.md).
    """
    from medsift.scoring.impacts import spans_from_bio

    orig = repair_bio(tags)
    if threshold <= 0:
        return orig
    column = {kind: k + 1 for k, kind in enumerate(types)}
    before = [tag_class(t) for t in orig]
    after = list(before)

    def claim(j: int, kind: str) -> bool:
        if before[j] != "O" or type_probs[j][column[kind]] < threshold:
            return False
        if after[j] == "O" or type_probs[j][column[kind]] > type_probs[j][column[after[j]]]:
            after[j] = kind
        return True

    for kind, start, end in spans_from_bio(orig):
        j = start - 1
        while j >= 0 and claim(j, kind):
            j -= 1
        j = end
        while j < len(orig) and claim(j, kind):
            j += 1
    out = []
    for i, kind in enumerate(after):
        if kind == "O":
            out.append("O")
        elif i > 0 and after[i - 1] == kind and not (orig[i].startswith("B-") and before[i - 1] == kind):
            out.append(f"I-{kind}")
        else:
            out.append(f"B-{kind}")
    return out


def to_bio(tags: Sequence[str], scheme: Scheme) -> list[str]:
    """Predicted word tags in ``scheme`` → well-formed BIO."""
    return io_to_bio(tags) if scheme == "io" else repair_bio(tags)
