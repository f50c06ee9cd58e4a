"""Chat training examples with the loss on the answer tokens only, and their padding collator."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from medsift.errors import MedsiftError
from medsift.llm import prompts
from medsift.llm.chunks import plan_chunks

IGNORE = -100


def encode_example(tokenizer, prompt: str, answer: str, max_length: int) -> dict[str, list[int]]:
    """input_ids = prompt + answer; labels = -100 over the prompt, the answer ids over the answer.

    Prompt and answer are tokenised separately so the prompt ids equal those scored at prediction time.
    Callers plan prompts that fit (ADE posts are shortened, span posts chunked with :func:`span_fits`); one
    that still does not fit loses its start tokens after the first and the example gets ``"cut": True``,
    so the trainer can report how many were cut.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    cut = len(prompt_ids) + len(answer_ids) > max_length
    room = max_length - len(answer_ids)
    if room < 1:
        answer_ids = answer_ids[: max_length - 1]
        room = 1
    if len(prompt_ids) > room:
        prompt_ids = prompt_ids[:1] + prompt_ids[len(prompt_ids) - room + 1 :]
    example = {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE] * len(prompt_ids) + answer_ids}
    if cut:
        example["cut"] = True
    return example


def truncate_text(tokenizer, text: str, max_tokens: int) -> str:
    """Keep the first ``max_tokens`` tokens of a post (ADE prompts must leave room for the answer)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens])


def ade_prompt(tokenizer, template: str, text: str, prompt_cfg, max_length: int) -> str:
    empty = prompts.render(
        tokenizer,
        prompts.ade_messages("", system=prompt_cfg.system, instruction=prompt_cfg.instruction),
        template,
    )[0]
    overhead = len(tokenizer(empty, add_special_tokens=False)["input_ids"])
    text = truncate_text(tokenizer, text, max(8, max_length - overhead - 4))
    return prompts.render(
        tokenizer,
        prompts.ade_messages(text, system=prompt_cfg.system, instruction=prompt_cfg.instruction),
        template,
    )[0]


def ade_examples(
    tokenizer, template: str, texts: Sequence[str], labels: Sequence[int], prompt_cfg, max_length: int
) -> tuple[list[dict], int]:
    """(one example per post, how many were cut to fit ``max_length``)."""
    out = []
    for text, label in zip(texts, labels, strict=True):
        msgs = prompts.ade_messages(text, system=prompt_cfg.system, instruction=prompt_cfg.instruction)
        prompt = ade_prompt(tokenizer, template, text, prompt_cfg, max_length)
        _, answer = prompts.render(tokenizer, msgs, template, answer=str(int(label)))
        out.append(encode_example(tokenizer, prompt, answer, max_length))
    return out, sum(bool(e.get("cut")) for e in out)


def span_prompt(tokenizer, template: str, tokens: Sequence[str], prompt_cfg) -> str:
    msgs = prompts.span_messages(
        tokens, prompt_cfg.labels, system=prompt_cfg.system, instruction=prompt_cfg.instruction
    )
    return prompts.render(tokenizer, msgs, template)[0]


def span_fits(tokenizer, template: str, prompt_cfg, max_length: int, max_new_tokens: int):
    """A predicate for :func:`plan_chunks`: the chunk's prompt plus ``max_new_tokens`` fit ``max_length``."""

    def fits(chunk: Sequence[str]) -> bool:
        prompt = span_prompt(tokenizer, template, chunk, prompt_cfg)
        return len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) + max_new_tokens <= max_length

    return fits


def check_span_budget(tokenizer, template: str, prompt_cfg, max_length: int, max_new_tokens: int) -> None:
    """Refuse a context too small for the prompt of a one-token chunk plus ``max_new_tokens``.

    Below that no chunking can help: every prompt would be cut (training) or overrun ``max_length``.
    """
    prompt = span_prompt(tokenizer, template, ["x"], prompt_cfg)
    need = len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) + max_new_tokens
    if need > max_length:
        raise MedsiftError(
            f"model.max_length {max_length} is too small for the span prompt: a one-token chunk needs {need} "
            f"tokens with decoding.max_new_tokens {max_new_tokens}; raise model.max_length or lower "
            "max_new_tokens"
        )


def span_examples(
    tokenizer, template: str, token_lists, tag_lists, prompt_cfg, max_length: int, decoding
) -> tuple[list[dict], int]:
    """(one example per chunk of each post, how many were cut to fit ``max_length``).

    Posts are chunked exactly as at prediction time (:func:`span_fits`: the prompt plus
    ``decoding.max_new_tokens`` fit the context), and a chunk is halved again while its gold answer does
    not fit; only a single token too long for the context can still be cut, and it is counted.
    """
    check_span_budget(tokenizer, template, prompt_cfg, max_length, decoding.max_new_tokens)
    predict_fits = span_fits(tokenizer, template, prompt_cfg, max_length, decoding.max_new_tokens)

    def parts(pairs: Sequence[tuple[str, str]]) -> tuple[str, str]:
        tokens, tags = [t for t, _ in pairs], [g for _, g in pairs]
        msgs = prompts.span_messages(
            tokens, prompt_cfg.labels, system=prompt_cfg.system, instruction=prompt_cfg.instruction
        )
        return prompts.render(tokenizer, msgs, template, answer=prompts.span_answer(tokens, tags))

    def fits(pairs: Sequence[tuple[str, str]]) -> bool:
        if not predict_fits([t for t, _ in pairs]):
            return False
        lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in parts(pairs)]
        return sum(lengths) <= max_length

    out = []
    for tokens, tags in zip(token_lists, tag_lists, strict=True):
        pairs = list(zip(tokens, tags, strict=True))
        for start, end in plan_chunks(pairs, decoding.chunk_tokens, fits):
            prompt, answer = parts(pairs[start:end])
            out.append(encode_example(tokenizer, prompt, answer, max_length))
    return out, sum(bool(e.get("cut")) for e in out)


class AnswerOnlyCollator:
    """Right-pads ``input_ids`` (pad id), ``labels`` (-100) and builds the attention mask (training)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            ids[row, :n] = torch.tensor(f["input_ids"])
            labels[row, :n] = torch.tensor(f["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
