"""Chat training examples with the loss on the answer tokens only, and their padding collator."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from medsift.llm import prompts
from medsift.llm.chunks import plan_chunks

IGNORE = -100


def encode_example(tokenizer, prompt: str, answer: str, max_length: int) -> dict[str, list[int]]:
    """input_ids = prompt + answer; labels = -100 over the prompt, the answer ids over the answer.

    Prompt and answer are tokenised separately so the prompt ids equal those scored at prediction time.
    A prompt too long for ``max_length`` loses its start tokens after the first (the system prompt shrinks
    before the answer is cut); callers keep posts short enough that this is rare.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    room = max_length - len(answer_ids)
    if room < 1:
        answer_ids = answer_ids[: max_length - 1]
        room = 1
    if len(prompt_ids) > room:
        prompt_ids = prompt_ids[:1] + prompt_ids[len(prompt_ids) - room + 1 :]
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE] * len(prompt_ids) + answer_ids}


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
) -> list[dict]:
    out = []
    for text, label in zip(texts, labels, strict=True):
        msgs = prompts.ade_messages(text, system=prompt_cfg.system, instruction=prompt_cfg.instruction)
        prompt = ade_prompt(tokenizer, template, text, prompt_cfg, max_length)
        _, answer = prompts.render(tokenizer, msgs, template, answer=str(int(label)))
        out.append(encode_example(tokenizer, prompt, answer, max_length))
    return out


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


def span_examples(
    tokenizer, template: str, token_lists, tag_lists, prompt_cfg, max_length: int, chunk_tokens: int
) -> list[dict]:
    """One example per chunk of each post, the answer listing that chunk's tagged tokens."""
    out = []
    for tokens, tags in zip(token_lists, tag_lists, strict=True):
        for start, end in plan_chunks(tokens, chunk_tokens):
            msgs = prompts.span_messages(
                tokens[start:end],
                prompt_cfg.labels,
                system=prompt_cfg.system,
                instruction=prompt_cfg.instruction,
            )
            prompt, answer = prompts.render(
                tokenizer, msgs, template, answer=prompts.span_answer(tokens[start:end], tags[start:end])
            )
            out.append(encode_example(tokenizer, prompt, answer, max_length))
    return out


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
