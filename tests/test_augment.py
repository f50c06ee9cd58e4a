"""`medsift augment`: plans, the Clever Hans guard, a tiny random NLLB-style model, resuming, and the splits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from medsift.augment import balance_findings, plan_augmentation
from medsift.augment.run import augment_file
from medsift.cli import main
from medsift.errors import MedsiftError
from medsift.io import read_ade
from test_ade import make_ade_csv

CODES = ["eng_Latn", "deu_Latn", "fra_Latn", "jpn_Jpan"]


@pytest.fixture(scope="module")
def tiny_nllb(tmp_path_factory) -> Path:
    """A random M2M-100 (NLLB's architecture) with a tiny unigram tokenizer that knows four FLORES-200 codes."""
    from transformers import AutoTokenizer, M2M100Config, M2M100ForConditionalGeneration

    import tiny

    out = tmp_path_factory.mktemp("nllb")
    tok = AutoTokenizer.from_pretrained(tiny.tiny_tokenizer_dir("unigram", root=out / "tok"))
    tok.add_special_tokens({"additional_special_tokens": CODES})
    config = M2M100Config(
        vocab_size=len(tok),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.eos_token_id,
    )
    import torch

    torch.manual_seed(0)
    M2M100ForConditionalGeneration(config).save_pretrained(out / "model")
    tok.save_pretrained(out / "model")
    return out / "model"


@pytest.fixture
def task1(tmp_path: Path) -> pd.DataFrame:
    return read_ade(make_ade_csv(tmp_path / "train.csv", n=60), labelled=True)


def test_balanced_plan_adds_as_many_negatives_as_positives_per_target(task1):
    plan = plan_augmentation(task1, targets=["de", "fr"], sources=["en"], mode="balanced")
    for target, group in plan.groupby("target_language"):
        assert group["label"].sum() * 2 == len(group)
        assert set(group["source_language"]) == {"en"} and target in ("de", "fr")
    assert plan["key"].is_unique
    assert not any(f.too_one_sided for f in balance_findings(plan))


def test_positives_only_plan_fires_the_guard(task1):
    plan = plan_augmentation(task1, targets=["fa"], mode="positives")
    assert set(plan["label"]) == {1} and set(plan["source_language"]) == {"en", "ja"}
    (finding,) = balance_findings(plan)
    assert finding.too_one_sided and finding.majority == "positive" and finding.majority_share == 1.0


def test_the_guard_refuses_before_any_model_is_loaded(tmp_path: Path):
    train = make_ade_csv(tmp_path / "t.csv", n=30)
    with pytest.raises(MedsiftError, match=r"Clever Hans.*fa: 10 rows added, 10 positive; 100% positive"):
        augment_file(train, tmp_path / "out.csv", model="no-such/model", targets=["fa"], mode="positives")
    assert not (tmp_path / "out.csv").exists()


def test_augment_writes_official_rows_with_their_source_ids(tiny_nllb: Path, tmp_path: Path, capsys):
    train = make_ade_csv(tmp_path / "t.csv", n=30)
    out = tmp_path / "aug.csv"
    main(["augment", str(train), "-o", str(out), "--model", str(tiny_nllb), "--to", "de,fr", "--from", "en",
          "--max-length", "16", "--batch-size", "4", "-q"])  # fmt: skip
    rows = read_ade(out, labelled=True)  # the official reader takes it: it goes straight into data.train
    assert set(rows["language"]) == {"de", "fr"} and rows["id"].is_unique
    source = read_ade(train, labelled=True).set_index("id")
    assert (rows["label"].to_numpy() == source.loc[rows["source_id"], "label"].to_numpy()).all()
    assert set(rows["source_language"]) == {"en"} and set(rows["translator"]) == {str(tiny_nllb)}
    assert (
        capsys.readouterr().err == f"wrote {len(rows)} rows to {out}: de 6 (3 positive), fr 6 (3 positive)\n"
    )
    # positives only: refused without the override, loudly warned with it
    with pytest.raises(SystemExit):
        main(["augment", str(train), "-o", str(tmp_path / "p.csv"), "--model", str(tiny_nllb), "--to", "fa",
              "--mode", "positives", "-q"])  # fmt: skip
    assert "Clever Hans" in capsys.readouterr().err
    main(["augment", str(train), "-o", str(tmp_path / "p.csv"), "--model", str(tiny_nllb), "--to", "fa",
          "--mode", "positives", "--allow-one-class", "--lang-code", "fa=jpn_Jpan", "--max-length", "8", "-q"])  # fmt: skip
    assert "CLEVER HANS RISK: fa" in capsys.readouterr().err
    assert set(read_ade(tmp_path / "p.csv", labelled=True)["label"]) == {1}


def test_the_target_code_is_forced_as_the_first_output_token(tiny_nllb: Path):
    from medsift.augment.translate import Translator

    translator = Translator(str(tiny_nllb), max_length=8)
    assert translator.style == "nllb"
    _, kwargs = translator._target_settings("en", "de", ["x"])
    assert kwargs["forced_bos_token_id"] == translator.tokenizer.convert_tokens_to_ids("deu_Latn")
    with pytest.raises(MedsiftError, match="no language code 'zho_Hans'"):
        translator.translate(["hello"], "en", "zh")


class _Killed(Exception):
    pass


def test_a_killed_run_resumes_and_writes_the_same_file(tiny_nllb: Path, tmp_path: Path):
    from medsift.augment.translate import Translator

    train = make_ade_csv(tmp_path / "t.csv", n=30)
    translator = Translator(str(tiny_nllb), max_length=12)
    common = dict(model=str(tiny_nllb), targets=["de"], batch_size=3, quiet=True)
    augment_file(train, tmp_path / "whole.csv", translator=translator, **common)

    calls = []

    class Dying:
        def translate(self, texts, source, target):
            if len(calls) == 2:
                raise _Killed
            calls.append(1)
            return translator.translate(texts, source, target)

    with pytest.raises(_Killed):
        augment_file(train, tmp_path / "resumed.csv", translator=Dying(), **common)
    assert (tmp_path / "resumed.csv.partial.csv").exists() and not (tmp_path / "resumed.csv").exists()
    summary = augment_file(train, tmp_path / "resumed.csv", translator=translator, **common)
    assert summary["resumed"] == 6
    assert (tmp_path / "resumed.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert not (tmp_path / "resumed.csv.partial.csv").exists()
    # an interrupted run of other settings is never mixed in
    with pytest.raises(_Killed):
        augment_file(train, tmp_path / "other.csv", translator=Dying(), **common)
    with pytest.raises(MedsiftError, match="other settings"):
        augment_file(train, tmp_path / "other.csv", translator=translator, **{**common, "targets": ["fr"]})


def test_an_unavailable_model_is_one_clear_line(tmp_path: Path):
    from medsift.augment.translate import Translator

    with pytest.raises(
        MedsiftError, match=r"'no-such-org/no-such-model' is not available here.*offline:e5-small"
    ):
        Translator("no-such-org/no-such-model")


def test_augmented_rows_train_only_and_never_translate_a_held_out_post(tmp_path: Path):
    from medsift.ade.data import load_splits
    from medsift.config import parse_config

    train = make_ade_csv(tmp_path / "t.csv", n=60)
    rows = read_ade(train, labelled=True)
    aug = pd.DataFrame(
        {
            "id": [f"aug-de-{i}" for i in rows["id"]],
            "text": rows["text"],
            "label": rows["label"].map(lambda v: f"{v}.0"),
            "origin": "x",
            "type": "tweet",
            "language": "de",
            "split": "augmented",
            "source_id": rows["id"],
            "source_language": rows["language"],
        }
    )
    aug.to_csv(tmp_path / "aug.csv", index=False)
    config = parse_config(
        {"task": "ade", "method": "ngram", "data": {"train": [str(train), str(tmp_path / "aug.csv")]}}
    )
    splits = load_splits(config)  # type: ignore[arg-type]
    assert not (splits.val["language"] == "de").any() and not (splits.calib["language"] == "de").any()
    added = splits.train[splits.train["language"] == "de"]
    held = set(splits.val["id"]) | set(splits.calib["id"])
    assert len(added) == len(rows) - len(held) and not set(added["source_id"]) & held
