"""LLM path, pure parts: configs, prompts, the tolerant parser, the grammar state machine, chunks."""

from __future__ import annotations

from itertools import pairwise

import pytest

from medsift.config import load_config, parse_config
from medsift.errors import ConfigError, MedsiftError
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


# ---- QLoRA, adapter files, the repair line: no model needed ------------------------------------------------


def test_asking_for_4bit_and_8bit_is_refused():
    with pytest.raises(ConfigError, match="load_in_4bit or load_in_8bit, not both"):
        parse_config({"task": "ade", "method": "llm", "model": {"load_in_4bit": True, "load_in_8bit": True}})
    from medsift.llm.config import LlmModelSection
    from medsift.llm.modeling import _quantisation

    both = LlmModelSection.model_construct(load_in_4bit=True, load_in_8bit=True)  # built by hand, unchecked
    with pytest.raises(MedsiftError, match="not both"):
        _quantisation(both)


@pytest.mark.parametrize("bits", ["load_in_4bit", "load_in_8bit"])
def test_qlora_without_bitsandbytes_or_cuda_fails_clearly(monkeypatch, bits):
    import sys
    import types

    import torch

    from medsift.llm.config import LlmModelSection
    from medsift.llm.modeling import _quantisation, load_base

    cfg = LlmModelSection(name="/nonexistent/model", **{bits: True})
    assert _quantisation(LlmModelSection()) is None  # unquantised by default: nothing is asked of the machine
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails as if not installed
    with pytest.raises(
        MedsiftError, match=r"needs the 'bitsandbytes' package \(pip install 'medsift\[qlora\]'\)"
    ):
        load_base(cfg)  # refused before the tokenizer or any weight is loaded
    monkeypatch.setitem(sys.modules, "bitsandbytes", types.ModuleType("bitsandbytes"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(MedsiftError, match="needs a CUDA GPU"):
        load_base(cfg)


def test_qlora_config_where_it_can_run(monkeypatch):
    import sys
    import types

    import torch

    from medsift.llm.config import LlmModelSection
    from medsift.llm.modeling import _quantisation

    monkeypatch.setitem(sys.modules, "bitsandbytes", types.ModuleType("bitsandbytes"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    four = _quantisation(LlmModelSection(load_in_4bit=True))
    assert four.load_in_4bit and four.bnb_4bit_quant_type == "nf4"
    assert four.bnb_4bit_compute_dtype == torch.bfloat16
    assert _quantisation(LlmModelSection(load_in_8bit=True)).load_in_8bit


def test_adapter_folder_must_hold_safetensors(tmp_path):
    from medsift.llm.modeling import check_adapter

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    with pytest.raises(MedsiftError, match=r"adapter_config\.json missing"):
        check_adapter(adapter)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(MedsiftError, match=r"refusing the pickled adapter_model\.bin") as err:
        check_adapter(adapter)
    assert err.value.file == str(adapter)
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    check_adapter(adapter)  # safetensors present: accepted (the .bin is never read)


def test_repair_line_counts_every_kind():
    from medsift.cli.run import repair_line

    report = {
        "outputs": 8,
        "outputs_repaired": 2,
        "repair_share": 0.25,
        "counts": {"token_mismatch": 1, "format": 3},
    }
    assert repair_line(report, False) == (
        "free decoding: 2 of 8 outputs needed repair (25%); repairs: format 3, token_mismatch 1"
    )
    clean = {"outputs": 3, "outputs_repaired": 0, "repair_share": 0.0, "counts": {}}
    assert (
        repair_line(clean, True) == "constrained decoding: 0 of 3 outputs needed repair (0%); repairs: none"
    )


def test_ade_llm_data_section_mirrors_the_encoder_split_keys():
    from medsift.ade.config import AdeDataSection
    from medsift.llm.config import AdeLlmDataSection

    llm, enc = AdeLlmDataSection(), AdeDataSection(train=["x.csv"])
    for key in (
        "dev",
        "calib",
        "val_fraction",
        "calib_fraction",
        "split_seed",
        "normalize",
        "max_train_rows",
    ):
        assert getattr(llm, key) == getattr(enc, key), key
    for name in ("ade-qwen-lora", "ade-smollm2-lora-cpu"):
        config = load_config(name)
        partner = load_config("ade-xlmr-large-dnt" if "qwen" in name else "ade-e5-small-cpu")
        for key in ("train", "val_fraction", "calib_fraction", "split_seed", "max_train_rows"):
            assert getattr(config.data, key) == getattr(partner.data, key), (name, key)
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config({"task": "ade", "method": "llm", "data": {"seed": 1}})


def test_shipped_cpu_llm_and_encoder_configs_carve_the_same_rows():
    """ade-smollm2-lora-cpu can join an ensemble with ade-e5-small-cpu: same val and calib rows."""
    from medsift.ade.data import load_splits as encoder_splits
    from medsift.llm.train import load_splits as llm_splits

    ours, theirs = (
        llm_splits(load_config("ade-smollm2-lora-cpu")),
        encoder_splits(load_config("ade-e5-small-cpu")),
    )
    for name in ("train", "val", "calib"):
        assert sorted(getattr(ours, name)["uid"]) == sorted(getattr(theirs, name)["uid"]), name
    assert len(ours.calib) > 0 and not set(ours.train["uid"]) & set(ours.calib["uid"])
