"""LLM path, pure parts: configs, prompts, the tolerant parser, the grammar state machine, chunks."""

from __future__ import annotations

from itertools import pairwise

import pytest

from medsift.config import load_config, parse_config
from medsift.errors import ConfigError
from medsift.llm.chunks import join_chunks, plan_chunks
from medsift.llm.constrained import Grammar
from medsift.llm.parse import parse_spans, repair_bio
from medsift.llm.prompts import span_answer

LABELS = ["B-ClinicalImpacts", "I-ClinicalImpacts", "B-SocialImpacts", "I-SocialImpacts"]
TOKENS = ["I", "overdosed", ":", "on", "pills", "and", "lost", "my", "job"]


@pytest.mark.parametrize(
    "name", ["ade-qwen-lora", "impacts-qwen-lora", "ade-smollm2-lora-cpu", "impacts-smollm2-lora-cpu"]
)
def test_shipped_configs_load(name):
    config = load_config(name)
    assert config.method == "llm" and config.lora.r == 8 and config.lora.alpha == 32


def test_unknown_key_rejected():
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config({"task": "ade", "method": "llm", "lora": {"rank": 8}})


def test_gold_answer_round_trips_without_repair():
    tags = [
        "O",
        "B-ClinicalImpacts",
        "O",
        "O",
        "O",
        "O",
        "B-SocialImpacts",
        "I-SocialImpacts",
        "I-SocialImpacts",
    ]
    parsed, report = parse_spans(span_answer(TOKENS, tags), TOKENS, LABELS)
    assert parsed == tags and report.outputs_repaired == 0
    parsed, report = parse_spans(span_answer(TOKENS, ["O"] * 9), TOKENS, LABELS)
    assert parsed == ["O"] * 9 and not report.counts


@pytest.mark.parametrize(
    ("text", "expect", "kinds"),
    [
        ("  1:overdosed:B-ClinicalImpacts  ", {1: "B-ClinicalImpacts"}, {"format"}),
        ("[1] : overdosed : B-ClinicalImpacts", {1: "B-ClinicalImpacts"}, {"format"}),
        ("40 : job : B-SocialImpacts", {}, {"index_out_of_range"}),
        ("7 : job : B-SocialImpacts", {8: "B-SocialImpacts"}, {"token_realigned"}),
        ("1 : pills : B-ClinicalImpacts", {4: "B-ClinicalImpacts"}, {"token_realigned"}),
        ("1 : heroin : B-ClinicalImpacts", {1: "B-ClinicalImpacts"}, {"token_mismatch"}),
        ("1 : B-ClinicalImpacts", {1: "B-ClinicalImpacts"}, {"format", "token_missing"}),
        ("overdosed : B-ClinicalImpacts", {1: "B-ClinicalImpacts"}, {"format", "index_recovered"}),
        (
            "1 : overdosed : B-ClinicalImpacts\n1 : overdosed : B-SocialImpacts",
            {1: "B-ClinicalImpacts"},
            {"duplicate_index"},
        ),
        ("Here are the spans!\n8 : job : B-SocialImpacts", {8: "B-SocialImpacts"}, {"free_text"}),
        (
            "6 : lost : SocialImpacts\n7 : my : social",
            {6: "B-SocialImpacts", 7: "I-SocialImpacts"},
            {"label_prefix"},
        ),
        ("1 : overdosed : b-clinicalimpacts", {1: "B-ClinicalImpacts"}, {"label_case"}),
        ("1 : overdosed : Happy", {}, {"label_unknown"}),
        ("4 : pills : I-ClinicalImpacts", {4: "B-ClinicalImpacts"}, {"bio_fixed"}),
        (
            "8 : job : B-SocialImpacts\n1 : overdosed : B-ClinicalImpacts",
            {1: "B-ClinicalImpacts", 8: "B-SocialImpacts"},
            {"out_of_order"},
        ),
        ("", {}, {"empty_output"}),
        ("2 : : : B-ClinicalImpacts", {2: "B-ClinicalImpacts"}, set()),
    ],
)
def test_parser_repairs_malformed_outputs(text, expect, kinds):
    tags, report = parse_spans(text, TOKENS, LABELS)
    assert len(tags) == len(TOKENS)
    assert {i: t for i, t in enumerate(tags) if t != "O"} == expect
    assert set(report.counts) == kinds
    assert report.outputs_repaired == int(bool(kinds))


def test_repair_bio():
    assert repair_bio(["I-A", "I-A", "O", "I-B", "B-A", "I-B"]) == ["B-A", "I-A", "O", "B-B", "B-A", "B-B"]


def _feed(grammar, text):
    state = grammar.start()
    for byte in text.encode():
        state = grammar.step(state, byte)
        if state is None:
            return None
    return state


def test_grammar_accepts_only_valid_answers():
    g = Grammar.build(TOKENS + ["x"] * 3, ["B-X", "I-X"])
    assert g.can_end(_feed(g, "1 : overdosed : B-X\n2 : : : I-X\n11 : x : B-X\n"))
    assert g.can_end(_feed(g, "None"))
    assert _feed(g, "12 ") is None  # index out of range
    assert _feed(g, "1 : overdosed : B-X\n1 ") is None  # not increasing
    assert _feed(g, "1 : pills") is None  # wrong token text
    assert _feed(g, "1 : overdosed : C") is None  # unknown label
    assert _feed(g, "01") is None  # leading zero
    assert not g.can_end(_feed(g, "1 : overdosed : B-"))
    assert _feed(g, "1 : overdosed : B-X\n3 : on : I-") is None  # I- must continue the previous index
    assert _feed(g, "2 : : : I-") is None  # nor start an answer


def test_chunks_cover_in_order_and_respect_fits():
    tokens = [str(i) for i in range(23)]
    plan = plan_chunks(tokens, 8, fits=lambda chunk: len(chunk) <= 5)
    assert plan[0][0] == 0 and plan[-1][1] == 23
    assert all(a[1] == b[0] for a, b in pairwise(plan))
    assert all(e - s <= 5 for s, e in plan)
    assert join_chunks([tokens[s:e] for s, e in plan]) == tokens
