"""Turning posts into model inputs without silently cutting long ones.

``encode_posts`` tokenises once without truncation, counts the posts that do not fit, and then applies the
chosen policy: ``head`` (keep the beginning), ``head_tail`` (keep the beginning and the end; ADE mentions
often close a post), or ``windows`` (overlapping windows, each a model input, averaged per post later).
Every input carries ``post`` (the index of its post) so window outputs can be pooled back to one per post.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EncodedPosts:
    features: list[dict[str, Any]]  # one per model input: input_ids, attention_mask, post (and labels)
    n_posts: int
    n_too_long: int = 0  # posts longer than the model's room
    lengths: list[int] = field(default_factory=list)  # subword count per post (no special tokens)
    room: int = 0  # subwords of a post that fit in one input (max_length minus the special tokens)

    def too_long(self) -> list[bool]:
        """Per post: longer than the model's room (so the long-post policy decided what the model saw)."""
        return [n > self.room for n in self.lengths]


def special_tokens_around(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a single sequence (e.g. [CLS] ... [SEP], <s> ... </s>).

    Found by tokenising a probe with and without special tokens, because transformers 5 fast tokenizers no
    longer expose ``build_inputs_with_special_tokens`` for every backend.
    """
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    body = tokenizer("a", add_special_tokens=False)["input_ids"]
    for i in range(len(full) - len(body) + 1):
        if full[i : i + len(body)] == body:
            return full[:i], full[i + len(body) :]
    raise ValueError("cannot locate the text between the special tokens of this tokenizer")


def _window_starts(n: int, room: int, stride: int) -> list[int]:
    if n <= room:
        return [0]
    step = max(1, room - stride)
    starts = list(range(0, n - room, step))
    starts.append(n - room)  # the last window ends exactly at the end of the post
    return starts


def _pieces(ids: list[int], room: int, policy: str, head_fraction: float, stride: int) -> list[list[int]]:
    if len(ids) <= room:
        return [ids]
    if policy == "head":
        return [ids[:room]]
    if policy == "head_tail":
        head = max(1, int(room * head_fraction))
        return [ids[:head] + ids[len(ids) - (room - head) :]]
    return [ids[s : s + room] for s in _window_starts(len(ids), room, stride)]


def encode_posts(
    tokenizer: Any,
    texts: list[str],
    *,
    max_length: int,
    policy: str = "head_tail",
    head_fraction: float = 0.5,
    stride: int = 64,
    labels: list[int] | None = None,
) -> EncodedPosts:
    """Tokenise ``texts`` into model inputs of at most ``max_length`` tokens (special tokens included)."""
    body = tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
    prefix, suffix = special_tokens_around(tokenizer)
    room = max_length - len(prefix) - len(suffix)
    features: list[dict[str, Any]] = []
    too_long = 0
    for i, ids in enumerate(body):
        too_long += len(ids) > room
        for piece in _pieces(ids, room, policy, head_fraction, stride):
            input_ids = prefix + piece + suffix
            feature = {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "post": i}
            if labels is not None:
                feature["labels"] = int(labels[i])
            features.append(feature)
    return EncodedPosts(features, len(texts), too_long, [len(ids) for ids in body], room)
