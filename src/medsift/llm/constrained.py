"""Constrained decoding of span answers: generation can only write what the parser reads without repair.

The grammar, per post chunk of ``n`` tokens: either the single answer ``None``, or one or more lines
``<index> : <token text> : <label>\\n`` with indices strictly increasing and ``< n``, the exact (display) text
of that index's token, and a label from the label set; then end of turn.

It is a byte-level state machine walked together with a trie of the vocabulary's byte strings: the
allowed next tokens are exactly those whose bytes keep the output a prefix of a valid answer. We keep our
own small machine instead of ``outlines`` or ``lm-format-enforcer`` because the grammar differs per post
(the token texts are part of it), which those libraries handle by compiling a new regex/FSM per prompt;
ours is built incrementally, exact, depends only on ``transformers`` and costs a few microseconds per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor

from medsift.llm.prompts import NONE_ANSWER, display_token

_DIGITS = frozenset(b"0123456789")


@dataclass(frozen=True)
class Grammar:
    """The answer grammar of one chunk: its token texts (as UTF-8 bytes) and the label set."""

    tokens: tuple[bytes, ...]
    labels: tuple[bytes, ...]

    @classmethod
    def build(cls, tokens: Sequence[str], labels: Sequence[str]) -> Grammar:
        return cls(
            tuple(display_token(t).encode() for t in tokens), tuple((lab + "\n").encode() for lab in labels)
        )

    # States are tuples: ("start",), ("index", digits, last, last_type), ("lit", remaining, index, labels),
    # ("label", index, sofar, labels), ("line", last, last_type), ("done",). ``None``: left the grammar.
    # ``last_type`` is the entity type of the line at ``last``, so an I- label may only continue the span
    # of the previous index (the answer is valid BIO by construction).

    def start(self) -> tuple:
        return ("start",)

    def _index_prefix_ok(self, digits: bytes, last: int) -> bool:
        n = len(self.tokens)
        if len(digits) > 1 and digits[:1] == b"0":
            return False
        value, scale = int(digits), 1
        while value * scale < n:
            low, high = value * scale, (value + 1) * scale - 1
            if digits == b"0":
                high = 0
            if max(low, last + 1) <= min(high, n - 1):
                return True
            if digits == b"0":
                return False
            scale *= 10
        return False

    def _labels_after(self, index: int, last: int, last_type: bytes | None) -> tuple[bytes, ...]:
        keep = []
        for lab in self.labels:
            if lab.startswith(b"I-") and (index != last + 1 or lab[2:-1] != last_type):
                continue
            keep.append(lab)
        return tuple(keep)

    def step(self, state: tuple, byte: int) -> tuple | None:
        kind = state[0]
        if kind in ("start", "line"):
            last, last_type = (-1, None) if kind == "start" else (state[1], state[2])
            if byte in _DIGITS:
                digits = bytes([byte])
                return ("index", digits, last, last_type) if self._index_prefix_ok(digits, last) else None
            if kind == "start" and byte == NONE_ANSWER.encode()[0]:
                return ("lit", NONE_ANSWER.encode()[1:], -1, ())
            return None
        if kind == "index":
            digits, last, last_type = state[1], state[2], state[3]
            if byte in _DIGITS:
                grown = digits + bytes([byte])
                return ("index", grown, last, last_type) if self._index_prefix_ok(grown, last) else None
            index = int(digits)
            labels = self._labels_after(index, last, last_type)
            if byte == ord(" ") and last < index < len(self.tokens) and labels:
                return ("lit", b": " + self.tokens[index] + b" : ", index, labels)
            return None
        if kind == "lit":
            remaining, index, labels = state[1], state[2], state[3]
            if not remaining or remaining[0] != byte:
                return None
            rest = remaining[1:]
            if rest:
                return ("lit", rest, index, labels)
            return ("done",) if index < 0 else ("label", index, b"", labels)
        if kind == "label":
            index, labels = state[1], state[3]
            sofar = state[2] + bytes([byte])
            if sofar in labels:
                return ("line", index, sofar[2:-1] if sofar[1:2] == b"-" else sofar[:-1])
            return ("label", index, sofar, labels) if any(lab.startswith(sofar) for lab in labels) else None
        return None

    def max_line_bytes(self) -> int:
        """The longest line the grammar allows, in bytes (a bound on its length in tokens)."""
        index_len = len(str(max(len(self.tokens) - 1, 0)))
        longest = max((len(t) for t in self.tokens), default=0) + max(
            (len(lab) for lab in self.labels), default=0
        )
        return max(index_len + 6 + longest, len(NONE_ANSWER))

    def can_end(self, state: tuple) -> bool:
        return state[0] in ("line", "done")


class VocabTrie:
    """The vocabulary as a byte trie: node = (children dict, token ids ending here)."""

    def __init__(self, tokenizer, exclude: set[int]):
        self.root: tuple[dict, list[int]] = ({}, [])
        self.token_bytes = token_byte_strings(tokenizer)
        for token_id, raw in enumerate(self.token_bytes):
            if token_id in exclude or not raw:
                continue
            node = self.root
            for byte in raw:
                node = node[0].setdefault(byte, ({}, []))
            node[1].append(token_id)

    def allowed(self, grammar: Grammar, state: tuple) -> list[int]:
        """Every token id whose bytes keep ``state`` inside the grammar."""
        out: list[int] = []
        stack = [(self.root, state)]
        while stack:
            (children, _), current = stack.pop()
            for byte, child in children.items():
                nxt = grammar.step(current, byte)
                if nxt is None:
                    continue
                out.extend(child[1])
                if child[0]:
                    stack.append((child, nxt))
        return out


def _byte_decoder() -> dict[str, int]:
    # The GPT-2 byte-to-unicode table that byte-level BPE vocabularies are written in.
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _is_byte_level(tokenizer, pieces: list[str | None], decoder: dict[str, int]) -> bool:
    """Whether the vocabulary is written in the GPT-2 byte alphabet (byte-level BPE).

    A fast tokenizer says so itself (a ``ByteLevel`` decoder); otherwise (slow tokenizers) most pieces must
    be spelled in that alphabet. SentencePiece-style vocabularies (``▁`` for spaces, ``<0xNN>`` byte
    fallback) have neither.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        import json

        spec = json.loads(backend.to_str()).get("decoder") or {}
        kinds = [d.get("type") for d in spec.get("decoders", [spec])] if isinstance(spec, dict) else []
        return "ByteLevel" in kinds
    return sum(all(ch in decoder for ch in p) for p in pieces if p) > 0.95 * len(pieces)


def token_byte_strings(tokenizer) -> list[bytes]:
    """The raw bytes each vocabulary id stands for (byte-level BPE, or SentencePiece with byte fallback)."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    decoder = _byte_decoder()
    byte_level = _is_byte_level(tokenizer, pieces, decoder)
    out = []
    for piece in pieces:
        if piece is None:
            out.append(b"")
        elif byte_level and all(ch in decoder for ch in piece):
            out.append(bytes(decoder[ch] for ch in piece))
        elif not byte_level and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            out.append(bytes([int(piece[3:5], 16)]))
        else:
            out.append(piece.replace("▁", " ").encode())
    return out


def end_token_ids(tokenizer, model) -> list[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted(set(ids))


class SpanGrammarProcessor(LogitsProcessor):
    """Masks every token that would leave the span grammar; one grammar per batch row (greedy/sampling)."""

    def __init__(
        self,
        trie: VocabTrie,
        grammars: Sequence[Grammar],
        end_ids: Sequence[int],
        prompt_length: int,
        max_new_tokens: int | None = None,
    ):
        self.trie, self.grammars, self.end_ids = trie, list(grammars), list(end_ids)
        self.prompt_length = prompt_length
        # With a token budget, no line is started that might not fit: the answer always ends cleanly.
        self.max_new_tokens = max_new_tokens
        self._states: dict[tuple[int, tuple[int, ...]], tuple | None] = {}

    def _state(self, row: int, generated: tuple[int, ...]) -> tuple | None:
        key = (row, generated)
        if key in self._states:
            return self._states[key]
        grammar = self.grammars[row]
        state = grammar.start() if not generated else self._state(row, generated[:-1])
        if generated and state is not None:
            if state == ("ended",) or generated[-1] in self.end_ids:
                state = ("ended",)
            else:
                for byte in self.trie.token_bytes[generated[-1]]:
                    state = grammar.step(state, byte)
                    if state is None:
                        break
        self._states[key] = state
        return state

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            state = self._state(row, tuple(input_ids[row, self.prompt_length :].tolist()))
            if state is None or state == ("ended",):
                mask[row] = 0  # finished rows are padded by generate itself; nothing to constrain
                continue
            grammar = self.grammars[row]
            if self.max_new_tokens is not None and state[0] in ("start", "line"):
                left = self.max_new_tokens - (input_ids.shape[1] - self.prompt_length)
                if left <= grammar.max_line_bytes() + 1:  # the line, then the end token
                    state = ("lit", NONE_ANSWER.encode(), -1, ()) if state[0] == "start" else ("done",)
            allowed = self.trie.allowed(grammar, state) if state[0] != "done" else []
            if grammar.can_end(state) or not allowed:
                allowed = allowed + self.end_ids
            mask[row, allowed] = 0
        return scores + mask
