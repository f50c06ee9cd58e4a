"""Prompt texts and rendering: the papers' ChatML prompts, or the model's own chat template.

ADE: the post goes in, the answer is the single character ``1`` (mentions an adverse drug event) or ``0``.
Spans: the tokens go in enumerated one per line (``Index: Token``); the answer lists every token inside an
impact span as ``<Index> : <Token> : <Label>`` lines, or the single word ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medsift.errors import MedsiftError

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

ADE_SYSTEM = (
    "You are a pharmacovigilance expert. You read posts written by patients and decide whether they report "
    "an adverse drug event: a harmful or unwanted effect that the writer attributes to a medication."
)
ADE_INSTRUCTION = (
    "Does the following post mention an adverse drug event? Answer with a single character: "
    "1 if it does, 0 if it does not.\n\nPost: {text}"
)
SPAN_SYSTEM = (
    "You are an expert annotator of Reddit posts about opioid use. You mark the words that describe clinical "
    "impacts (health effects such as overdose, withdrawal, pain, hospital stays) and social impacts (effects on "
    "work, family, relationships, the law, money)."
)
SPAN_INSTRUCTION = (
    "The post is given one token per line as 'Index: Token'. List every token that belongs to an impact span, "
    "one per line, as '<Index> : <Token> : <Label>', in increasing index order. Labels: {labels}. "
    "A span starts with a B- label and continues with I- labels. If there is no impact, answer exactly None."
    "\n\n{tokens}"
)
NONE_ANSWER = "None"


def display_token(token: str) -> str:
    """The one-line form of a token used in prompts, answers and the grammar (whitespace collapsed)."""
    text = " ".join(str(token).split())
    return text if text else "_"


def enumerate_tokens(tokens: Sequence[str]) -> str:
    """``Index: Token`` lines, 0-based."""
    return "\n".join(f"{i}: {display_token(t)}" for i, t in enumerate(tokens))


def span_answer(tokens: Sequence[str], tags: Sequence[str]) -> str:
    """The gold answer for a chunk: one line per tagged token, each ending in a newline, or ``None``."""
    lines = [
        f"{i} : {display_token(t)} : {tag}\n"
        for i, (t, tag) in enumerate(zip(tokens, tags, strict=True))
        if tag != "O"
    ]
    return "".join(lines) if lines else NONE_ANSWER


def ade_messages(text: str, *, system: str = "", instruction: str = "") -> list[dict[str, str]]:
    user = (instruction or ADE_INSTRUCTION).replace("{text}", text)
    return [{"role": "system", "content": system or ADE_SYSTEM}, {"role": "user", "content": user}]


def span_messages(
    tokens: Sequence[str], labels: Sequence[str], *, system: str = "", instruction: str = ""
) -> list[dict[str, str]]:
    user = (instruction or SPAN_INSTRUCTION).replace("{labels}", ", ".join(labels))
    user = user.replace("{tokens}", enumerate_tokens(tokens))
    return [{"role": "system", "content": system or SPAN_SYSTEM}, {"role": "user", "content": user}]


def resolve_template(tokenizer, chat_template: str) -> str:
    """The Jinja template to use: the tokenizer's own ('model', ChatML when it has none), ChatML, or a file."""
    if chat_template == "model":
        return getattr(tokenizer, "chat_template", None) or CHATML_TEMPLATE
    if chat_template == "chatml":
        return CHATML_TEMPLATE
    path = Path(chat_template).expanduser()
    if not path.is_file():
        raise MedsiftError(
            "model.chat_template must be 'model', 'chatml' or an existing Jinja file", file=path
        )
    return path.read_text(encoding="utf-8")


def render(
    tokenizer, messages: list[dict[str, str]], template: str, *, answer: str | None = None
) -> tuple[str, str]:
    """(prompt text ending where the answer starts, answer text including the end-of-turn marker).

    The answer part is what the template adds after the generation prompt, so the model learns to close its
    turn; templates that rewrite earlier turns fall back to the answer followed by the EOS token.
    """
    kwargs = dict(tokenize=False, chat_template=template, enable_thinking=False)
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, **kwargs)
    if answer is None:
        return prompt, ""
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": answer}], **kwargs)
    if full.startswith(prompt) and full[len(prompt) :].startswith(answer):
        return prompt, full[len(prompt) :]
    return prompt, answer + (tokenizer.eos_token or "")
