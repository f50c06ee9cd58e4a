"""The impact-tagger commands on the bad-input corpus: ``train`` with an impacts config, ``predict`` with a
tagger run and ``tag --file``; each bad file ends in one error line (file, row, problem) and exit code 2.

The corpus, the tables of which file goes where and the helpers are those of ``test_reliability_cli.py``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import yaml

from test_reliability_cli import (
    IMPACTS_BAD_INPUT,
    IMPACTS_BAD_TRAIN,
    TAG_BAD,
    assert_one_error_line,
    corpus,  # noqa: F401 (the fixture)
    run_main,
)


def _impacts_config(tmp_path: Path, model: Path, train: list[Path]) -> Path:
    cfg = {
        "task": "impacts",
        "model": {"name": str(model), "max_length": 16, "stride": 4},
        "data": {"train": [str(p) for p in train], "val_fraction": 0.25, "seed": 1},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 4, "use_cpu": True},
        "seeds": [3],
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "impacts.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tagger_run(tiny_bert: Path, tmp_path_factory) -> Path:
    """A tiny impact tagger run trained through the CLI (1 epoch)."""
    from medsift.cli import main
    from test_impacts_model import POSTS, _write_csv

    tmp = tmp_path_factory.mktemp("tagger")
    cfg = _impacts_config(tmp, tiny_bert, [_write_csv(tmp / "train.csv", POSTS * 2)])
    try:
        main(["train", str(cfg), "-q"])
    except SystemExit as exc:  # main returns on success; an error exits
        assert exc.code in (0, None), exc
    return tmp / "run"


@pytest.mark.parametrize("name", sorted(IMPACTS_BAD_TRAIN))
def test_train_impacts_bad_training_file(name, corpus, tiny_bert, tmp_path, capsys):  # noqa: F811
    cfg = _impacts_config(tmp_path, tiny_bert, [corpus[name]])
    code, _, err = run_main(["train", cfg, "-q"], capsys)
    assert_one_error_line(code, err, corpus[name], IMPACTS_BAD_TRAIN[name])
    assert not (tmp_path / "run" / "medsift_run.json").exists()


@pytest.mark.parametrize("name", sorted(IMPACTS_BAD_INPUT))
def test_predict_tagger_bad_input(name, corpus, tagger_run, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "pred.csv"
    code, _, err = run_main(["predict", tagger_run, corpus[name], "-o", out, "-q"], capsys)
    assert_one_error_line(code, err, corpus[name], IMPACTS_BAD_INPUT[name])
    assert not out.exists() and not list(tmp_path.glob(".pred.csv.*"))


@pytest.mark.parametrize("name", sorted(TAG_BAD))
def test_tag_bad_file(name, corpus, tagger_run, capsys):  # noqa: F811
    code, out, err = run_main(["tag", tagger_run, "--file", corpus[name]], capsys)
    assert_one_error_line(code, err, corpus[name], TAG_BAD[name])
    assert out == ""


ODD_WORDS = [
    ["این", "دارو", "باعث", "سردرد", "شد"],
    ["\u202bתרופה\u202c", "mixed", "\u200f"],
    ["😵‍💫", "💊", "🤢"],
    ["bell\x07", "escape\x1b[0m", "\u2028"],
    ["I", "overdosed"] * 5000,  # a long post: windows, one tag per token
]


def test_predict_tagger_odd_but_valid_rows_one_row_per_id_in_order(tagger_run, tmp_path, capsys):
    src = tmp_path / "odd.csv"
    with src.open("w", encoding="utf-8-sig", newline="") as fh:  # BOM and CRLF
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(["ID", "tokens"])
        for n, words in enumerate(ODD_WORDS):
            writer.writerow([f"odd_{n}" if n != 1 else "NaN", repr(words)])
    out = tmp_path / "pred.csv"
    code, _, err = run_main(["predict", tagger_run, src, "-o", out, "-q"], capsys)
    assert code == 0, err
    sub = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert sub["ID"].tolist() == ["odd_0", "NaN", "odd_2", "odd_3", "odd_4"]
    from medsift.io import read_impacts_submission

    tags = read_impacts_submission(out)["predicted_ner_tags"].tolist()
    assert [len(t) for t in tags] == [len(w) for w in ODD_WORDS]


def test_tag_odd_but_valid_file_one_result_per_line(tagger_run, tmp_path, capsys):
    import json

    posts = [
        "این دارو باعث سردرد شد",
        "😵‍💫💊🤢",
        "Took أسبرين and got a headache 头痛",
        "one post\u2028with a line separator\x1cand a file separator",  # not cut in three
        "I overdosed",
    ]
    src = tmp_path / "posts.txt"
    src.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(posts).encode("utf-8") + b"\r\n")
    code, out, err = run_main(["tag", tagger_run, "--file", src, "--json"], capsys)
    assert code == 0, err
    # JSON lines end at "\n" only: a span over "post\u2028with" holds a raw U+2028, which splitlines() cuts
    records = [json.loads(line) for line in out.split("\n") if line]
    assert [r["post"] for r in records] == [1, 2, 3, 4, 5]
    for text, record in zip(posts, records, strict=True):
        assert all(text[s["start_char"] : s["end_char"]] == s["text"] for s in record["spans"])


def test_predict_tagger_text_file_ids_are_physical_line_numbers(tagger_run, tmp_path, capsys):
    src = tmp_path / "posts.txt"
    src.write_text("I overdosed\n\nlost my job\u2028and my flat\n  \nwithdrawal was hell\n", encoding="utf-8")
    out, spans = tmp_path / "pred.csv", tmp_path / "spans.json"
    code, _, err = run_main(["predict", tagger_run, src, "-o", out, "--spans-json", spans, "-q"], capsys)
    assert code == 0, err
    assert pd.read_csv(out, dtype=str)["ID"].tolist() == ["1", "3", "5"]
