"""Span tagging by generation: chunk each post, generate (free or constrained), parse, join the chunks."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from medsift.llm.chunks import join_chunks, plan_chunks
from medsift.llm.constrained import Grammar, SpanGrammarProcessor, VocabTrie, end_token_ids
from medsift.llm.data import check_span_budget, span_fits, span_prompt
from medsift.llm.parse import RepairReport, parse_spans
from medsift.llm.scoring import left_padded

_TRIES: list[tuple[object, VocabTrie]] = []  # a few recent (tokenizer, trie) pairs


def vocab_trie(tokenizer) -> VocabTrie:
    """One trie per tokenizer object (building it walks the whole vocabulary once)."""
    for owner, trie in _TRIES:
        if owner is tokenizer:
            return trie
    specials = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    trie = VocabTrie(tokenizer, exclude=specials)
    _TRIES[:] = [*_TRIES[-3:], (tokenizer, trie)]
    return trie


@torch.inference_mode()
def generate_answers(
    model, tokenizer, prompts: Sequence[str], grammars: Sequence[Grammar] | None, max_new_tokens: int
) -> list[str]:
    """Greedy answers for a batch of prompts; ``grammars`` (one per prompt) turns on constrained decoding."""
    from transformers import LogitsProcessorList

    device = next(model.parameters()).device
    batch = left_padded(tokenizer, prompts, device)
    ends = end_token_ids(tokenizer, model)
    processors = LogitsProcessorList()
    if grammars is not None:
        processors.append(
            SpanGrammarProcessor(
                vocab_trie(tokenizer),
                grammars,
                ends,
                batch["input_ids"].shape[1],
                max_new_tokens=max_new_tokens,
            )
        )
    out = model.generate(
        **batch,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        logits_processor=processors,
        eos_token_id=ends,
        pad_token_id=tokenizer.pad_token_id,
    )
    texts = []
    for row in out[:, batch["input_ids"].shape[1] :].tolist():
        cut = next((i for i, t in enumerate(row) if t in ends), len(row))
        texts.append(
            tokenizer.decode(row[:cut], skip_special_tokens=True, clean_up_tokenization_spaces=False)
        )
    return texts


def tag_posts(
    model,
    tokenizer,
    template: str,
    token_lists: Sequence[Sequence[str]],
    prompt_cfg,
    decoding,
    *,
    max_length: int,
    constrained: bool,
    batch_size: int = 8,
    progress=None,
) -> tuple[list[list[str]], RepairReport, list[list[str]]]:
    """(one tag per token for each post, the summed repair report, the raw answer of every chunk)."""
    check_span_budget(tokenizer, template, prompt_cfg, max_length, decoding.max_new_tokens)
    fits = span_fits(tokenizer, template, prompt_cfg, max_length, decoding.max_new_tokens)
    jobs = [
        (p, s, e)
        for p, tokens in enumerate(token_lists)
        for s, e in plan_chunks(tokens, decoding.chunk_tokens, fits)
    ]
    pieces: dict[tuple[int, int], list[str]] = {}
    raw: list[list[str]] = [[] for _ in token_lists]
    report = RepairReport()
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start : start + batch_size]
        chunks = [list(token_lists[p][s:e]) for p, s, e in batch]
        prompts = [span_prompt(tokenizer, template, chunk, prompt_cfg) for chunk in chunks]
        grammars = [Grammar.build(chunk, prompt_cfg.labels) for chunk in chunks] if constrained else None
        answers = generate_answers(model, tokenizer, prompts, grammars, decoding.max_new_tokens)
        for (p, s, _), chunk, answer in zip(batch, chunks, answers, strict=True):
            tags, chunk_report = parse_spans(answer, chunk, prompt_cfg.labels)
            report.add(chunk_report)
            pieces[(p, s)] = tags
            raw[p].append(answer)
        if progress is not None:
            progress.update(len(batch))
    tags = [join_chunks([pieces[(p, s)] for q, s, _ in jobs if q == p]) for p in range(len(token_lists))]
    return tags, report, raw
