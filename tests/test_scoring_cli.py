"""``medsift score``: tables, JSON, --output, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsift.cli import app, main

GOLD_ADE = """id,text,label,origin,type,language,split
en_1,a,1.0,o,tweet,en,train
en_2,b,0.0,o,tweet,en,train
de_1,c,1.0,o,forum,de,train
de_cadecv2_1,d,1.0,o,drug_review,de,train
"""
PRED_ADE = "id,predicted_label\nen_1,1\nen_2,1\nde_1,1\nde_cadecv2_1,0\n"

GOLD_IMPACTS = """tokens,labels,ID,ner_tags
"['I', 'overdosed', 'badly']","['_', 'ClinicalImpacts', '_']",p1,"['O', 'B-ClinicalImpacts', 'O']"
"['lost', 'my', 'job']","['SocialImpacts', 'SocialImpacts', 'SocialImpacts']",p2,"['B-SocialImpacts', 'I-SocialImpacts', 'I-SocialImpacts']"
"""
PRED_IMPACTS = """ID,predicted_ner_tags
p2,"['B-SocialImpacts', 'I-SocialImpacts', 'O']"
p1,"['O', 'B-ClinicalImpacts', 'O']"
"""


def _argv(*args: str) -> list[str]:
    # a typer app with a single registered command runs it without its name; with several it needs it
    return ["score", *args] if len(app.registered_commands) > 1 else list(args)


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_ade_json_and_output_file(tmp_path, capsys):
    gold, pred = _write(tmp_path, "gold.csv", GOLD_ADE), _write(tmp_path, "pred.csv", PRED_ADE)
    out = tmp_path / "scores.json"
    main(_argv("--task", "ade", gold, pred, "--json", "--output", str(out)))
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    # en+de pooled: tp=2 fp=1 fn=0 → F1 0.8; the cadec row is scored apart
    assert printed["f1"] == pytest.approx(0.8) and printed["support"] == 3
    assert printed["per_language"]["de_cadec"]["f1"] == 0.0
    assert printed["overall_excludes"] == ["de_cadec"]


def test_ade_table_names_both_f1s(tmp_path, capsys):
    gold, pred = _write(tmp_path, "gold.csv", GOLD_ADE), _write(tmp_path, "pred.csv", PRED_ADE)
    main(_argv("--task", "ade", gold, pred))
    text = capsys.readouterr().out
    assert "positive" in text and "two-class" in text and "de_cadec" in text and "0.8000" in text


def test_impacts_table_and_json(tmp_path, capsys):
    gold, pred = _write(tmp_path, "gold.csv", GOLD_IMPACTS), _write(tmp_path, "pred.csv", PRED_IMPACTS)
    main(_argv("--task", "impacts", gold, pred, "--json"))
    scores = json.loads(capsys.readouterr().out)
    assert scores["strict"]["overall"]["f1"] == 0.5  # Clinical exact, Social boundary wrong
    assert scores["relaxed"]["overall"]["recall"] == pytest.approx(3 / 4)  # overlap 1+2 of 4 gold tokens
    assert scores["relaxed_rounded"]["overall"]["f1"] == round(2 * 1 * 0.75 / 1.75, 3)
    main(_argv("--task", "impacts", gold, pred))
    text = capsys.readouterr().out
    assert "strict" in text and "relaxed" in text and "SocialImpacts" in text and "2 sequences" in text


@pytest.mark.parametrize(
    ("pred_text", "fragment"),
    [
        ("id,predicted_label\nen_1,1\nen_2,1\nde_1,1\n", "missing ids de_cadecv2_1"),
        (PRED_ADE + "xx_1,0\n", "xx_1"),
        ("id,predicted_label\nen_1,1\nen_2,1\nde_1,7\nde_cadecv2_1,0\n", "row 3"),  # the reader names the row
    ],
)
def test_bad_ade_submission_is_one_error_line_exit_2(tmp_path, capsys, pred_text, fragment):
    gold, pred = _write(tmp_path, "gold.csv", GOLD_ADE), _write(tmp_path, "pred.csv", pred_text)
    with pytest.raises(SystemExit) as info:
        main(_argv("--task", "ade", gold, pred))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medsift: error:") and fragment in err and "\n" not in err


def test_bad_impacts_submission_names_id_and_lengths(tmp_path, capsys):
    gold = _write(tmp_path, "gold.csv", GOLD_IMPACTS)
    pred = _write(tmp_path, "pred.csv", "ID,predicted_ner_tags\np1,\"['O', 'O']\"\np2,\"['O', 'O', 'O']\"\n")
    with pytest.raises(SystemExit) as info:
        main(_argv("--task", "impacts", gold, pred))
    err = capsys.readouterr().err
    assert info.value.code == 2 and "p1" in err and "3" in err and "2" in err
