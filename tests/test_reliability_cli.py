"""Every bad input through every reading command: one clear error line (file, row, problem), exit code 2.

The full matrix runs in-process through ``medsift.cli.main`` (the same code path as the console script);
a representative subset runs the real ``medsift`` executable in a subprocess. Valid-but-odd inputs (a 1 MB
post, right-to-left and mixed scripts, emoji-only posts, control characters, BOM, CRLF) must predict with
exactly one row per input id, in input order.

The tables below say which corpus file goes to which command (and the row its error must name); the
impact-tagger commands (``train`` with an impacts config, ``predict`` with a tagger run, ``tag``) are in
``test_reliability_cli_impacts.py``. ``test_every_corpus_file_is_fed_to_a_command`` keeps the tables
complete.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from medsift.cli import main

TESTS = Path(__file__).parent
BAD = TESTS / "data" / "bad"
GOOD = TESTS / "data" / "good"
ADE_HEADER = b"id,text,label,origin,type,language,split\n"
MEDSIFT = Path(sys.executable).parent / "medsift"

# Byte-level bad ADE files are generated (never committed, so no editor or git filter rewrites them).
BYTE_FILES = {
    "invalid_utf8.csv": ADE_HEADER + b"en_1,fine,0.0,x,t,en,s\nen_2,caf\xe9,1.0,x,t,en,s\n",
    "nul_byte.csv": ADE_HEADER + b"en_1,fine,0.0,x,t,en,s\nen_2,bad\x00byte,1.0,x,t,en,s\n",
    "bom_only.csv": b"\xef\xbb\xbf",
    "crlf_bad_label.csv": (ADE_HEADER + b"en_1,ok,1.0,x,t,en,s\nen_2,ok,yes,x,t,en,s\n").replace(
        b"\n", b"\r\n"
    ),
    "probabilities_bom_crlf_bad.csv": b"\xef\xbb\xbf"
    + b"id,language,p_ade\r\nen_1,en,0.5\r\nen_2,en,-0.1\r\n",
    # plain-text posts (one per line) for the impact tagger's `predict` and `tag --file`
    "posts_invalid_utf8.txt": b"I overdosed\ncaf\xe9 and lost my job\n",
    "posts_nul.txt": b"I overdosed\nbad\x00byte\n",
    "posts_empty.txt": b"",
    "posts_blank_lines.txt": b"\n  \r\n\t\n",
}

# Bad ADE inputs (official-format files): name -> row the error must name (None: a whole-file problem).
ADE_BAD = {
    "ade_bad_quote.csv": 2,
    "ade_duplicate_id.csv": 3,
    "ade_empty.csv": None,
    "ade_header_only.csv": None,
    "ade_label_1_5.csv": 2,
    "ade_label_2.csv": 2,
    "ade_label_empty.csv": 2,
    "ade_label_minus1.csv": 2,
    "ade_label_yes.csv": 2,
    "ade_missing_id.csv": 2,
    "ade_missing_text.csv": None,
    "ade_semicolon.csv": None,
    "ade_short_row.csv": 2,
    "ade_tab.csv": None,
    "invalid_utf8.csv": 2,
    "nul_byte.csv": 2,
    "bom_only.csv": None,
    "crlf_bad_label.csv": 2,
}
# Gold files need labels: a file without the label column is an error for `score` and `train` only.
ADE_BAD_GOLD = {**ADE_BAD, "ade_missing_label.csv": None}
SUBMISSION_BAD = {
    "submission_duplicate_id.csv": 3,
    "submission_label_2.csv": 2,
    "submission_missing_column.csv": None,
    "ade_empty.csv": None,
    "ade_header_only.csv": None,
    "invalid_utf8.csv": 2,
}
IMPACTS_BAD_GOLD = {
    "impacts_code_in_cell.csv": 1,
    "impacts_empty_tokens.csv": 1,
    "impacts_length_mismatch.csv": 1,
    "impacts_malformed_list.csv": 1,
    "impacts_not_strings.csv": 1,
    "impacts_unknown_tag.csv": 1,
    "impacts_surrogate_token.csv": 1,
    "ade_empty.csv": None,
}
IMPACTS_BAD_PRED = {
    "impacts_submission_bad_tag.csv": 1,
    "submission_label_2.csv": None,
    "ade_empty.csv": None,
}
# Probability files (`medsift ensemble val=PATH,calib=PATH`): NaN, out of range, empty, header only, ...
PROBABILITIES_BAD = {
    "probabilities_nan.csv": 2,
    "probabilities_out_of_range.csv": 2,
    "probabilities_not_a_number.csv": 2,
    "probabilities_duplicate_id.csv": 3,
    "probabilities_header_only.csv": None,
    "probabilities_missing_column.csv": None,
    "probabilities_label_yes.csv": 2,
    "probabilities_bom_crlf_bad.csv": 2,
    "ade_empty.csv": None,
    "bom_only.csv": None,
    "invalid_utf8.csv": 2,
}
# Impact-tagger commands (test_reliability_cli_impacts.py). Training files need ner_tags.
IMPACTS_BAD_TRAIN = {
    **IMPACTS_BAD_GOLD,
    "impacts_submission_bad_tag.csv": None,  # a submission, not training data: no tokens column
    "ade_header_only.csv": None,
    "invalid_utf8.csv": 2,
    "nul_byte.csv": 2,
    "bom_only.csv": None,
}
# `predict` with a tagger run reads the official CSV (ner_tags optional), .txt or .jsonl.
IMPACTS_BAD_INPUT = {
    **IMPACTS_BAD_TRAIN,
    "crlf_bad_label.csv": None,  # an ADE file: no tokens column
    "texts_bad_json.jsonl": 2,
    "texts_no_text.jsonl": 3,
    "texts_surrogate.jsonl": 2,
    "posts_invalid_utf8.txt": 2,
    "posts_nul.txt": 2,
    "posts_empty.txt": None,
    "posts_blank_lines.txt": None,
}
# `tag --file`: one post per line.
TAG_BAD = {
    "posts_invalid_utf8.txt": 2,
    "posts_nul.txt": 2,
    "posts_empty.txt": None,
    "posts_blank_lines.txt": None,
}
# Read by no command (no command takes CoNLL): covered reader-level in test_io_bad_inputs.py only.
READER_ONLY = {"conll_bad_tag.txt", "conll_missing_tag.txt"}
# `predict` with an ADE ensemble run reads the same files as with a classifier run.
JSONL_BAD = {"texts_bad_json.jsonl": 2, "texts_no_text.jsonl": 3, "texts_surrogate.jsonl": 2}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """name -> path of every bad file: the committed corpus plus the generated byte-level files."""
    folder = tmp_path_factory.mktemp("bytes")
    files = {p.name: p for p in BAD.iterdir()}
    for name, data in BYTE_FILES.items():
        (folder / name).write_bytes(data)
        files[name] = folder / name
    return files


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    """Valid gold/submission pairs for both tasks (the bad file replaces one side)."""
    folder = tmp_path_factory.mktemp("good")
    gold = folder / "gold.csv"
    gold.write_text(
        "id,text,label,origin,type,language,split\nen_1,I felt dizzy,1.0,x,t,en,dev\nen_2,fine,0.0,x,t,en,dev\n",
        encoding="utf-8",
    )
    sub = folder / "sub.csv"
    sub.write_text("id,predicted_label\nen_1,1\nen_2,0\n", encoding="utf-8")
    igold = folder / "igold.csv"
    igold.write_text(
        "tokens,ID,ner_tags\n\"['I', 'overdosed', '.']\",t1,\"['O', 'B-ClinicalImpacts', 'O']\"\n",
        encoding="utf-8",
    )
    isub = folder / "isub.csv"
    isub.write_text("ID,predicted_ner_tags\nt1,\"['O', 'B-ClinicalImpacts', 'O']\"\n", encoding="utf-8")
    return {"gold": gold, "sub": sub, "igold": igold, "isub": isub}


@pytest.fixture(scope="module")
def ade_run(tiny_bert: Path, tmp_path_factory) -> Path:
    """A tiny trained ADE classifier run (2 epochs, seconds on CPU)."""
    from medsift.ade.train import train
    from test_ade import make_ade_csv, tiny_config

    tmp = tmp_path_factory.mktemp("ade_run")
    cfg = tiny_config(
        tiny_bert, make_ade_csv(tmp / "train.csv"), tmp / "run", training={"num_train_epochs": 2}
    )
    return train(cfg, quiet=True)


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code: int, err: str, path: Path, row: int | None) -> None:
    """Exit 2, exactly one stderr line ``medsift: error: FILE: row N: PROBLEM``, no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("medsift: error: "), line
    assert str(path) in line, line
    if row is not None:
        assert f"row {row}:" in line, line
    problem = line.rsplit(": ", 1)[-1]
    assert len(problem) > 5, line  # the problem itself is said, not only where


# --- score -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ADE_BAD_GOLD))
def test_score_ade_bad_gold(name, corpus, good, capsys):
    code, _, err = run_main(["score", "--task", "ade", corpus[name], good["sub"]], capsys)
    assert_one_error_line(code, err, corpus[name], ADE_BAD_GOLD[name])


@pytest.mark.parametrize("name", sorted(SUBMISSION_BAD))
def test_score_ade_bad_submission(name, corpus, good, capsys):
    code, _, err = run_main(["score", "--task", "ade", good["gold"], corpus[name]], capsys)
    assert_one_error_line(code, err, corpus[name], SUBMISSION_BAD[name])


def test_score_ade_submission_with_missing_and_extra_ids(good, tmp_path, capsys):
    sub = tmp_path / "sub.csv"
    sub.write_text("id,predicted_label\nen_1,1\nen_9,0\n", encoding="utf-8")
    code, _, err = run_main(["score", "--task", "ade", good["gold"], sub], capsys)
    assert_one_error_line(code, err, sub, None)
    assert "en_2" in err


@pytest.mark.parametrize("name", sorted(IMPACTS_BAD_GOLD))
def test_score_impacts_bad_gold(name, corpus, good, capsys):
    code, _, err = run_main(["score", "--task", "impacts", corpus[name], good["isub"]], capsys)
    assert_one_error_line(code, err, corpus[name], IMPACTS_BAD_GOLD[name])


@pytest.mark.parametrize("name", sorted(IMPACTS_BAD_PRED))
def test_score_impacts_bad_submission(name, corpus, good, capsys):
    code, _, err = run_main(["score", "--task", "impacts", good["igold"], corpus[name]], capsys)
    assert_one_error_line(code, err, corpus[name], IMPACTS_BAD_PRED[name])


def test_score_impacts_submission_token_count_mismatch(good, tmp_path, capsys):
    sub = tmp_path / "short.csv"
    sub.write_text("ID,predicted_ner_tags\nt1,\"['O', 'O']\"\n", encoding="utf-8")
    code, _, err = run_main(["score", "--task", "impacts", good["igold"], sub], capsys)
    assert_one_error_line(code, err, sub, None)
    assert "t1" in err and "3 tags" in err


# --- predict ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ADE_BAD))
def test_predict_bad_input(name, corpus, ade_run, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, _, err = run_main(["predict", ade_run, corpus[name], "-o", out, "-q"], capsys)
    assert_one_error_line(code, err, corpus[name], ADE_BAD[name])
    assert not out.exists() and not list(tmp_path.glob(".pred.csv.*"))  # nothing half-written


def _odd_posts(tmp_path: Path) -> Path:
    """Valid but odd posts: 1 MB, RTL/mixed scripts, emoji-only, control characters; BOM + CRLF file."""
    big = ("I took 20mg and felt dizzy, nauseous; " * 30_000)[:1_000_000]
    rows = [
        ("big_1", big),
        ("fa_1", "این دارو باعث سردرد شد"),
        ("he_1", "\u202bתרופה\u202c mixed RTL with LTR marks \u200f"),
        ("mix_1", "Took أسبرين and got a headache 头痛 too"),
        ("emoji_1", "😵‍💫💊🤢"),
        ("ctrl_1", "bell\x07 escape\x1b[0m line\u2028sep"),
        ("nl_1", 'multi\nline\r\npost with "quotes", commas'),
        ("NaN", "NaN"),
        ("0", "zero id"),
    ]
    path = tmp_path / "odd.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(["id", "text", "language"])
        for i, text in rows:
            writer.writerow([i, text, "en"])
    return path


def test_predict_odd_but_valid_posts_one_row_per_id_in_order(ade_run, tmp_path, capsys):
    src = _odd_posts(tmp_path)
    out, probs = tmp_path / "pred.csv", tmp_path / "probs.csv"
    code, _, err = run_main(["predict", ade_run, src, "-o", out, "--probabilities", probs, "-q"], capsys)
    assert code == 0, err
    ids = [r[0] for r in csv.reader(src.open(encoding="utf-8-sig", newline=""))][1:]
    sub = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert sub["id"].tolist() == ids  # one row per id, input order, "NaN" and "0" kept as ids
    assert set(sub["predicted_label"]) <= {"0", "1"}
    p = pd.read_csv(probs, dtype={"id": str}, keep_default_na=False)
    assert p["id"].tolist() == ids and p["p_ade"].between(0, 1).all()


def test_predict_unicode_file_with_extra_columns(ade_run, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, _, err = run_main(["predict", ade_run, GOOD / "ade_unicode.csv", "-o", out, "-q"], capsys)
    assert code == 0, err
    expected = pd.read_csv(GOOD / "ade_unicode.csv", dtype=str, keep_default_na=False)["id"].tolist()
    assert pd.read_csv(out, dtype=str, keep_default_na=False)["id"].tolist() == expected


@pytest.mark.parametrize("name", ["ade_blank_text.csv", "ade_empty_text_cell.csv"])
def test_blank_posts_are_predicted_and_counted_never_refused(name, ade_run, good, tmp_path, capsys):
    """Official files hold posts whose text is one space: predict gives them a row, and says how many."""
    out = tmp_path / "pred.csv"
    code, _, err = run_main(["predict", ade_run, GOOD / name, "-o", out], capsys)
    assert code == 0, err
    assert pd.read_csv(out, dtype=str)["id"].tolist() == ["en_1", "en_2"]
    assert "1 blank post(s)" in err
    code, _, err = run_main(["predict", ade_run, GOOD / name, "-o", out, "-q"], capsys)
    assert code == 0 and err == "", err
    code, out_text, err = run_main(["score", "--task", "ade", GOOD / name, out, "--json"], capsys)
    assert code == 0, err
    assert '"support": 2' in out_text


def test_predict_jsonl_bad_lines(corpus, ade_run, tmp_path, capsys):
    for name, row in JSONL_BAD.items():
        code, _, err = run_main(["predict", ade_run, corpus[name], "-o", tmp_path / "o.csv", "-q"], capsys)
        assert_one_error_line(code, err, corpus[name], row)


def test_predict_failure_after_reading_leaves_no_output(ade_run, tmp_path, capsys, monkeypatch):
    """A run that fails after the input was read (here: the model) writes nothing at all."""
    from medsift.ade import predict as ade_predict

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash inside the model")

    monkeypatch.setattr(ade_predict.AdeClassifier, "predict", broken)
    out = tmp_path / "pred.csv"
    with pytest.raises(RuntimeError):
        main(["predict", str(ade_run), str(GOOD / "ade_unicode.csv"), "-o", str(out), "-q"])
    assert list(tmp_path.iterdir()) == []


def test_predict_with_unfinished_run_is_one_line(tmp_path, corpus, capsys):
    run = tmp_path / "half"
    (run / "seed-1" / "checkpoints").mkdir(parents=True)
    code, _, err = run_main(["predict", run, GOOD / "ade_unicode.csv", "-o", tmp_path / "o.csv"], capsys)
    assert_one_error_line(code, err, run, None)
    assert "not a finished medsift run" in err


# --- train -----------------------------------------------------------------------------------------


def _write_config(tmp_path: Path, model: Path, train: list[Path]) -> Path:
    cfg = {
        "task": "ade",
        "model": {"name": str(model), "max_length": 32},
        "data": {"train": [str(p) for p in train], "val_fraction": 0.2, "calib_fraction": 0.2},
        "training": {"num_train_epochs": 1, "use_cpu": True},
        "seeds": [1],
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(ADE_BAD_GOLD))
def test_train_bad_training_file(name, corpus, tiny_bert, tmp_path, capsys):
    cfg = _write_config(tmp_path, tiny_bert, [corpus[name]])
    code, _, err = run_main(["train", cfg, "-q"], capsys)
    assert_one_error_line(code, err, corpus[name], ADE_BAD_GOLD[name])
    assert not (tmp_path / "run" / "medsift_run.json").exists()


def test_train_bad_config_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("task: ade\ndata: {train: [x.csv]}\nmodel: {nme: typo}\n", encoding="utf-8")
    code, _, err = run_main(["train", cfg], capsys)
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("medsift: error: ") and "cfg.yaml" in err


@pytest.mark.parametrize("main_process", [True, False])
def test_train_says_where_the_run_went_once_per_launch(main_process, tmp_path, capsys, monkeypatch):
    """Under accelerate launch / torchrun every process runs the command; only rank 0 prints the line."""
    import medsift.kinds
    import medsift.training

    monkeypatch.setattr(medsift.training, "is_main_process", lambda: main_process)
    monkeypatch.setattr(
        medsift.kinds, "trainer_for", lambda task, method: lambda cfg, run_dir, quiet: run_dir
    )
    code, out, err = run_main(["train", "ade-e5-small-cpu", "--output-dir", tmp_path / "run"], capsys)
    assert code == 0 and not err
    assert out == (f"run saved to {tmp_path / 'run'}\n" if main_process else "")


def test_train_ids_shared_across_merged_files_keeps_every_row(tiny_bert, tmp_path):
    """Two training files that share ids: both rows are kept (distinct uids), none dropped or doubled."""
    from medsift.ade.data import load_splits
    from medsift.config import load_config
    from test_ade import make_ade_csv

    a = make_ade_csv(tmp_path / "a.csv", n=30, seed=1)
    b = make_ade_csv(tmp_path / "b.csv", n=30, seed=2)  # same ids (en_0, ja_3, ...) as a.csv
    cfg = load_config(str(_write_config(tmp_path, tiny_bert, [a, b])), [])
    table = load_splits(cfg).table()
    assert len(table) == 60 and table["uid"].is_unique
    assert sorted(table["uid"]) == sorted(
        [f"a:{i}" for i in pd.read_csv(a)["id"]] + [f"b:{i}" for i in pd.read_csv(b)["id"]]
    )


# --- ensemble ---------------------------------------------------------------------------------------


def _probability_file(path: Path, ids: list[str], *, lf: bytes = b"\n", bom: bool = False) -> Path:
    rows = "".join(f"{i},en,0.{k + 2},{k % 2}\n" for k, i in enumerate(ids))
    data = ("id,language,p_ade,label\n" + rows).encode().replace(b"\n", lf)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


@pytest.fixture(scope="module")
def probabilities(tmp_path_factory) -> dict[str, Path]:
    """A valid labelled val/calib pair of probability files (the bad file replaces one side)."""
    folder = tmp_path_factory.mktemp("probs")
    ids = [f"en_{n}" for n in range(1, 7)]
    return {
        "val": _probability_file(folder / "val.csv", ids),
        "calib": _probability_file(folder / "calib.csv", [f"en_{n}" for n in range(7, 13)]),
    }


@pytest.mark.parametrize("side", ["val", "calib"])
@pytest.mark.parametrize("name", sorted(PROBABILITIES_BAD))
def test_ensemble_bad_probability_file(name, side, corpus, probabilities, tmp_path, capsys):
    files = {**probabilities, side: corpus[name]}
    members = [f"val={files['val']},calib={files['calib']},name=a", f"val={probabilities['val']},name=b"]
    code, _, err = run_main(["ensemble", *members, "-o", tmp_path / "ens"], capsys)
    assert_one_error_line(code, err, corpus[name], PROBABILITIES_BAD[name])
    assert not (tmp_path / "ens" / "medsift_run.json").exists()


def test_ensemble_accepts_bom_and_crlf_probability_files(probabilities, tmp_path, capsys):
    ids = [f"en_{n}" for n in range(1, 7)]
    odd = _probability_file(tmp_path / "bom_crlf.csv", ids, lf=b"\r\n", bom=True)
    members = [f"val={odd},calib={probabilities['calib']},name=a", f"val={probabilities['val']},name=b"]
    code, _, err = run_main(["ensemble", *members, "-o", tmp_path / "ens"], capsys)
    assert code == 0, err
    assert (tmp_path / "ens" / "medsift_run.json").exists()


def test_ensemble_members_with_mismatched_ids_are_refused(tmp_path, capsys):
    specs = []
    for name, ids in (("a", ["en_1", "en_2", "en_3"]), ("b", ["en_1", "en_2", "en_4"])):
        path = _probability_file(tmp_path / f"{name}_val_probabilities.csv", ids)
        specs.append(f"val={path},name={name}")
    code, _, err = run_main(["ensemble", *specs, "-o", tmp_path / "ens"], capsys)
    assert code == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("medsift: error: ") and "en_4" in lines[0]


@pytest.fixture(scope="module")
def ensemble_run(ade_run: Path, tmp_path_factory) -> Path:
    """An ADE ensemble run over the tiny classifier run (it can predict new posts)."""
    out = tmp_path_factory.mktemp("ens") / "ens"
    main_args = ["ensemble", str(ade_run), "-o", str(out)]
    try:
        main(main_args)
    except SystemExit as exc:
        assert exc.code in (0, None), exc
    return out


@pytest.mark.parametrize("name", sorted({**ADE_BAD, **JSONL_BAD}))
def test_predict_with_ensemble_run_bad_input(name, corpus, ensemble_run, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, _, err = run_main(["predict", ensemble_run, corpus[name], "-o", out, "-q"], capsys)
    assert_one_error_line(code, err, corpus[name], {**ADE_BAD, **JSONL_BAD}[name])
    assert not out.exists()


def test_an_ensemble_run_predicts_and_counts_blank_posts_too(ensemble_run, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, _, err = run_main(["predict", ensemble_run, GOOD / "ade_blank_text.csv", "-o", out], capsys)
    assert code == 0, err
    assert pd.read_csv(out, dtype=str)["id"].tolist() == ["en_1", "en_2"] and "1 blank post(s)" in err


def test_predict_with_ensemble_run_odd_posts_one_row_per_id(ensemble_run, tmp_path, capsys):
    src = _odd_posts(tmp_path)
    out = tmp_path / "pred.csv"
    code, _, err = run_main(["predict", ensemble_run, src, "-o", out, "-q"], capsys)
    assert code == 0, err
    ids = [r[0] for r in csv.reader(src.open(encoding="utf-8-sig", newline=""))][1:]
    assert pd.read_csv(out, dtype=str, keep_default_na=False)["id"].tolist() == ids


# --- completeness ----------------------------------------------------------------------------------

COMMAND_TABLES = {
    "score (gold)": ADE_BAD_GOLD,
    "score (submission)": SUBMISSION_BAD,
    "score impacts (gold)": IMPACTS_BAD_GOLD,
    "score impacts (submission)": IMPACTS_BAD_PRED,
    "predict (classifier / ensemble run)": {**ADE_BAD, **JSONL_BAD},
    "train (ade)": ADE_BAD_GOLD,
    "ensemble": PROBABILITIES_BAD,
    "train (impacts)": IMPACTS_BAD_TRAIN,
    "predict (tagger run)": IMPACTS_BAD_INPUT,
    "tag --file": TAG_BAD,
}


def test_every_corpus_file_is_fed_to_a_command(corpus):
    used = {name for table in COMMAND_TABLES.values() for name in table}
    assert used <= set(corpus), sorted(used - set(corpus))  # no table names a file that does not exist
    unused = set(corpus) - used - READER_ONLY
    assert not unused, f"corpus files no command reads: {sorted(unused)}"
    assert set(corpus) >= READER_ONLY and not READER_ONLY & used


# --- the real console script in subprocesses (a representative subset) ------------------------------

SUBPROCESS_CASES = [
    ("score-gold", "ade_label_yes.csv"),
    ("score-gold", "invalid_utf8.csv"),
    ("score-gold", "ade_semicolon.csv"),
    ("score-sub", "submission_duplicate_id.csv"),
    ("score-impacts", "impacts_length_mismatch.csv"),
    ("score-impacts", "impacts_malformed_list.csv"),
    # these import torch in the child (10-15 s each on a busy 2-core machine)
    pytest.param("predict", "ade_empty.csv", marks=pytest.mark.slow),
    pytest.param("predict", "nul_byte.csv", marks=pytest.mark.slow),
    pytest.param("train", "ade_duplicate_id.csv", marks=pytest.mark.slow),
]


@pytest.mark.skipif(not MEDSIFT.exists(), reason="the medsift console script is not installed")
@pytest.mark.parametrize(("command", "name"), SUBPROCESS_CASES)
def test_console_script_bad_input(command, name, corpus, good, ade_run, tiny_bert, tmp_path):
    path = corpus[name]
    args = {
        "score-gold": ["score", "--task", "ade", path, good["sub"]],
        "score-sub": ["score", "--task", "ade", good["gold"], path],
        "score-impacts": ["score", "--task", "impacts", path, good["isub"]],
        "predict": ["predict", ade_run, path, "-o", tmp_path / "o.csv", "-q"],
        "train": ["train", _write_config(tmp_path, tiny_bert, [path]), "-q"],
    }[command]
    proc = subprocess.run(
        [str(MEDSIFT), *map(str, args)], capture_output=True, text=True, timeout=120, env=_env()
    )
    expected = {**ADE_BAD_GOLD, **SUBMISSION_BAD, **IMPACTS_BAD_GOLD}[name]
    assert proc.stdout == ""
    assert_one_error_line(proc.returncode, proc.stderr, path, expected)


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "OMP_NUM_THREADS": "1"}
