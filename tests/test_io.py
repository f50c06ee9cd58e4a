"""Readers and writers on hand-made files, the bundled sample, the real data, and write→read round trips."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medsift.data import sample_path
from medsift.errors import MedsiftError
from medsift.io import (
    ADE_COLUMNS,
    IMPACT_COLUMNS,
    label_set_from_tags,
    read_ade,
    read_ade_any,
    read_ade_files,
    read_ade_submission,
    read_conll,
    read_impacts,
    read_impacts_submission,
    read_probabilities,
    read_texts,
    unique_uids,
    write_ade_submission,
    write_conll,
    write_impacts_submission,
    write_probabilities,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HEADER = "id,text,label,origin,type,language,split\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_read_ade_frame_shape_and_labels(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "train.csv",
        HEADER + "en_1,dizzy,1.0,o,tweet,en,s\nen_2,fine, 0 ,o,tweet,en,s\nen_3,ok,1,o,tweet,en,s\n",
    )
    frame = read_ade(path)
    assert list(frame.columns) == ADE_COLUMNS
    assert str(frame["label"].dtype) == "Int64"
    assert frame["label"].tolist() == [1, 0, 1]
    assert frame["uid"].tolist() == frame["id"].tolist() == ["en_1", "en_2", "en_3"]
    assert frame["source"].eq(str(path)).all()
    assert read_ade(path, labelled=False)["label"].isna().all()


def test_read_ade_test_file_is_unlabelled(tmp_path: Path) -> None:
    path = _write(tmp_path / "test.csv", "id,text,origin,type,language,split\nfa_1,سردرد,o,tweet,fa,test\n")
    frame = read_ade(path)
    assert frame["label"].isna().all() and frame["language"].tolist() == ["fa"]
    # An all-empty label column is an unlabelled file, not an error, unless labels are required.
    empty = _write(tmp_path / "empty_labels.csv", HEADER + "x_1,text,,o,t,xx,test\n")
    assert read_ade(empty)["label"].isna().all()
    with pytest.raises(MedsiftError, match="row 1: label is empty"):
        read_ade(empty, labelled=True)


def test_merge_keeps_all_rows_and_makes_unique_uids(tmp_path: Path) -> None:
    a = _write(tmp_path / "train_en.csv", HEADER + "en_1,a,1.0,o,t,en,s\nen_2,b,0.0,o,t,en,s\n")
    b = _write(tmp_path / "dev_en.csv", HEADER + "en_2,c,0,o,t,en,s\nen_3,d,1,o,t,en,s\n")
    merged = read_ade_files([a, b])
    assert len(merged) == 4
    assert merged["id"].tolist() == ["en_1", "en_2", "en_2", "en_3"]
    assert merged["uid"].tolist() == ["train_en:en_1", "train_en:en_2", "dev_en:en_2", "dev_en:en_3"]
    assert merged["source"].tolist() == [str(a), str(a), str(b), str(b)]
    # Two files with the same stem in different folders still get unique uids.
    (tmp_path / "x").mkdir()
    c = _write(tmp_path / "x" / "train_en.csv", HEADER + "en_1,e,1.0,o,t,en,s\n")
    merged = read_ade_files([a, c])
    assert merged["uid"].is_unique and len(merged) == 3
    # No overlap: uid = id.
    assert read_ade_files([a, _write(tmp_path / "other.csv", HEADER + "zz,z,0,o,t,en,s\n")])[
        "uid"
    ].tolist() == [
        "en_1",
        "en_2",
        "zz",
    ]


def test_read_texts_csv_jsonl_json_parquet(tmp_path: Path) -> None:
    csv_path = _write(tmp_path / "posts.csv", "text,note\nI feel dizzy,x\nall good,y\n")
    frame = read_texts(csv_path)
    assert list(frame.columns[:9]) == ADE_COLUMNS
    assert frame["id"].tolist() == ["row-1", "row-2"] and frame["language"].tolist() == ["", ""]
    assert frame["label"].isna().all()
    lines = [{"id": "a", "text": "héllo", "language": "fr"}, {"text": "😵"}, {"text": "x", "label": 1}]
    jsonl = _write(
        tmp_path / "posts.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in lines) + "\n\n"
    )
    # A label on some records only is refused (row named) unless labels are ignored.
    with pytest.raises(MedsiftError, match="row 1: label is empty"):
        read_texts(jsonl)
    frame = read_texts(jsonl, labelled=False)
    assert frame["id"].tolist() == ["a", "row-2", "row-3"]
    assert frame["text"].tolist() == ["héllo", "😵", "x"]
    assert frame["language"].tolist() == ["fr", "", ""]
    array = _write(tmp_path / "posts.json", json.dumps(lines[:2]))
    assert read_texts(array)["id"].tolist() == ["a", "row-2"]
    parquet = tmp_path / "posts.parquet"
    pd.DataFrame({"id": ["p1", "p2"], "text": ["a", "b"], "label": [1, 0]}).to_parquet(parquet)
    assert read_texts(parquet)["label"].tolist() == [1, 0]


def test_read_ade_any_dispatches_on_columns(tmp_path: Path) -> None:
    official = _write(tmp_path / "test.csv", "id,text,origin,type,language,split\nfa_1,x,o,t,fa,test\n")
    assert read_ade_any(official)["language"].tolist() == ["fa"]
    own = _write(tmp_path / "own.csv", "text\nhello\n")
    assert read_ade_any(own)["id"].tolist() == ["row-1"]


def test_ade_submission_round_trip_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "submission.csv"
    write_ade_submission(path, ["b", "a"], [1, 0.0], expected_ids=["a", "b"])
    assert path.read_text() == "id,predicted_label\nb,1\na,0\n"
    assert read_ade_submission(path)["predicted_label"].tolist() == [1, 0]
    with pytest.raises(MedsiftError, match="duplicate id 'a'"):
        write_ade_submission(path, ["a", "a"], [1, 0])
    with pytest.raises(MedsiftError, match="row 2: predicted_label is 2"):
        write_ade_submission(path, ["a", "b"], [1, 2])
    with pytest.raises(MedsiftError, match="2 ids but 1 labels"):
        write_ade_submission(path, ["a", "b"], [1])
    with pytest.raises(MedsiftError, match=r"1 expected id\(s\) missing \(e\.g\. 'c'\)"):
        write_ade_submission(path, ["a", "b"], [1, 0], expected_ids=["a", "b", "c"])
    with pytest.raises(MedsiftError, match=r"predicted_label is nan"):
        write_ade_submission(path, ["a"], [math.nan])
    assert read_ade_submission(path)["id"].tolist() == ["b", "a"]  # failed writes left the file alone


def test_probabilities_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "id": ["a", "b"],
            "language": ["en", ""],
            "p_ade": [0.1 + 0.2, 1.0],
            "label": pd.array([1, pd.NA], dtype="Int64"),
            "p_ade__seed42": [0.0, 1e-300],
            "other": ["dropped", "dropped"],
        }
    )
    path = tmp_path / "probs.csv"
    write_probabilities(path, frame)
    back = read_probabilities(path)
    assert list(back.columns) == ["id", "language", "p_ade", "label", "p_ade__seed42"]
    assert back["p_ade"].tolist() == [0.1 + 0.2, 1.0]
    assert back["p_ade__seed42"].tolist() == [0.0, 1e-300]
    assert back["label"].tolist()[0] == 1 and back["label"].isna().tolist() == [False, True]
    with pytest.raises(MedsiftError, match=r"row 2: p_ade__seed42 is -0\.5"):
        write_probabilities(path, frame.assign(p_ade__seed42=[0.5, -0.5]))
    with pytest.raises(MedsiftError, match="row 1: p_ade is inf"):
        write_probabilities(path, frame.assign(p_ade=[math.inf, 0.5]))


def test_impacts_repeated_ids_keep_every_row(tmp_path: Path) -> None:
    rows = "\n".join(
        f"\"['w{i}']\",\"['_']\",{rid},\"['O']\""
        for i, rid in enumerate(["Train_1", "Train_1", "x", "Train_1"])
    )
    path = _write(tmp_path / "train.csv", "tokens,labels,ID,ner_tags\n" + rows + "\n")
    frame = read_impacts(path)
    assert list(frame.columns) == IMPACT_COLUMNS
    assert frame["ID"].tolist() == ["Train_1", "Train_1", "x", "Train_1"]
    assert frame["uid"].tolist() == ["Train_1", "Train_1#2", "x", "Train_1#3"]
    assert unique_uids(["a", "a#2", "a"]) == ["a", "a#2", "a#3"]


def test_impacts_tokens_with_quotes_and_submission_format(tmp_path: Path) -> None:
    tokens = ["I've", 'say "hi"', "a,b", "ü"]
    path = tmp_path / "sub.csv"
    write_impacts_submission(
        path, ["t1", "t1"], [["O", "B-X", "I-X", "O"], ["B-Y"]], token_lists=[tokens, ["z"]]
    )
    text = path.read_text()
    assert text.splitlines()[0] == "ID,predicted_ner_tags"
    assert text.splitlines()[1] == "t1,\"['O', 'B-X', 'I-X', 'O']\""
    back = read_impacts_submission(path)
    assert back["ID"].tolist() == ["t1", "t1"] and back["uid"].tolist() == ["t1", "t1#2"]
    with pytest.raises(MedsiftError, match="row 1: 4 tokens but 3 predicted tags"):
        write_impacts_submission(path, ["t1"], [["O", "O", "O"]], token_lists=[tokens])
    with pytest.raises(MedsiftError, match="row 1: predicted_ner_tags: tag 1 is 'X-Foo'"):
        write_impacts_submission(path, ["t1"], [["X-Foo"]])


def test_writers_refuse_nul(tmp_path: Path) -> None:
    with pytest.raises(MedsiftError, match="row 2: id contains a NUL"):
        write_ade_submission(tmp_path / "s.csv", ["a", "b\x00"], [0, 1])
    with pytest.raises(MedsiftError, match="row 1: ID contains a NUL"):
        write_impacts_submission(tmp_path / "s.csv", ["\x00"], [["O"]])
    with pytest.raises(MedsiftError) as info:
        write_impacts_submission(tmp_path / "s.csv", ["a"], [["B-\x00"]])
    assert "tag 1 is 'B-\\x00'" in str(info.value)
    assert not (tmp_path / "s.csv").exists()


def test_label_set_from_tags() -> None:
    assert label_set_from_tags([["O", "B-WD", "I-WD"], None, ["B-ADR"], ["I-SSI"]]) == ["ADR", "SSI", "WD"]


def test_conll_read_write_round_trip(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "c.txt", "-DOCSTART- O\n\nI O\nfelt\tO\nsick B-ADR\n\r\n\nQuit\tB-WD\ncold\tI-WD\n"
    )
    frame = read_conll(path)
    assert frame["ID"].tolist() == ["c_1", "c_2"]
    assert frame["tokens"].tolist() == [["I", "felt", "sick"], ["Quit", "cold"]]
    assert frame["labels"].tolist() == [["_", "_", "ADR"], ["WD", "WD"]]
    out = tmp_path / "out.txt"
    write_conll(out, frame)
    again = read_conll(out)
    assert again["tokens"].tolist() == frame["tokens"].tolist()
    assert again["ner_tags"].tolist() == frame["ner_tags"].tolist()
    with pytest.raises(MedsiftError, match="row 1: token 'a b' is empty or contains whitespace"):
        write_conll(out, pd.DataFrame({"tokens": [["a b"]], "ner_tags": [["O"]]}))


def test_bundled_sample() -> None:
    ade = read_ade(sample_path("ade_sample"), labelled=True)
    assert set(ade["language"]) == {"en", "ja"} and 300 <= len(ade) <= 500
    assert 0.2 <= ade["label"].mean() <= 0.35
    train, test = read_ade(sample_path("ade_sample_train.csv")), read_ade(sample_path("ade_sample_test.csv"))
    assert len(train) + len(test) == len(ade) and not set(train["id"]) & set(test["id"])
    impacts = read_impacts(sample_path("impacts_sample"), labelled=True)
    assert label_set_from_tags(impacts["ner_tags"]) == ["ADR", "DI", "SSI", "WD"]
    assert impacts["ner_tags"].map(lambda tags: any(t != "O" for t in tags)).mean() > 0.5
    for name in ("impacts_sample_train", "impacts_sample_test"):
        assert len(read_impacts(sample_path(name), labelled=True)) > 0
    for name in ("ade_sample.csv", "impacts_sample.csv", "LICENSES.md"):
        assert sample_path(name).stat().st_size < 200_000
    with pytest.raises(MedsiftError, match="no bundled sample named 'nope'"):
        sample_path("nope")


REAL_ADE = {
    "train_en.csv": 17128,
    "train_ru.csv": 10695,
    "train_de.csv": 1482,
    "train_cadec_translated.csv": 810,
}


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared data folder is absent")
def test_real_files_read_with_right_counts() -> None:
    for name, count in REAL_ADE.items():
        frame = read_ade(SHARED / "task1" / name, labelled=True)
        assert len(frame) == count and frame["label"].notna().all()
    merged = read_ade_files([SHARED / "task1" / name for name in REAL_ADE], labelled=True)
    assert len(merged) == sum(REAL_ADE.values()) and merged["uid"].is_unique
    train = read_impacts(SHARED / "task7" / "train.csv", labelled=True)
    assert len(train) == 842 and (train["ID"] == "Train_1").sum() == 100 and train["uid"].is_unique
    assert label_set_from_tags(train["ner_tags"]) == ["ClinicalImpacts", "SocialImpacts"]
    test = read_impacts(SHARED / "task7" / "test_unlabeled.csv")
    assert len(test) == 578 and test["ner_tags"].isna().all() and test["tokens"].map(len).max() == 9009
    counts = {"train": 3850, "dev": 550, "test": 1191}
    for split, count in counts.items():
        frame = read_conll(SHARED / "psytar" / "all" / f"{split}.txt")
        assert len(frame) == count
        assert label_set_from_tags(frame["ner_tags"]) == ["ADR", "DI", "SSI", "WD"]


# Round trips with arbitrary unicode. Surrogates cannot be encoded as UTF-8 and NUL is refused by design
# (writers refuse it too: see test_writers_refuse_nul).
unicode_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=30
)
ids = st.lists(unicode_text.filter(lambda s: s.strip() != ""), min_size=1, max_size=8, unique=True)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(ids=ids, data=st.data())
def test_ade_submission_round_trip_property(tmp_path: Path, ids: list[str], data: st.DataObject) -> None:
    labels = data.draw(st.lists(st.sampled_from([0, 1]), min_size=len(ids), max_size=len(ids)))
    path = tmp_path / "sub.csv"
    write_ade_submission(path, ids, labels)
    back = read_ade_submission(path)
    assert back["id"].tolist() == ids and back["predicted_label"].tolist() == labels


@SETTINGS
@given(ids=ids, data=st.data())
def test_probabilities_round_trip_property(tmp_path: Path, ids: list[str], data: st.DataObject) -> None:
    n = len(ids)
    probs = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
    frame = pd.DataFrame(
        {
            "id": ids,
            "language": data.draw(st.lists(unicode_text, min_size=n, max_size=n)),
            "p_ade": data.draw(st.lists(probs, min_size=n, max_size=n)),
            "p_ade__m1": data.draw(st.lists(probs, min_size=n, max_size=n)),
        }
    )
    path = tmp_path / "probs.csv"
    write_probabilities(path, frame)
    back = read_probabilities(path)
    assert back["id"].tolist() == ids
    # Language codes are stripped on reading (they are codes, not free text).
    assert back["language"].tolist() == [s.strip() for s in frame["language"]]
    assert back["p_ade"].tolist() == frame["p_ade"].tolist()
    assert back["p_ade__m1"].tolist() == frame["p_ade__m1"].tolist()


tag = st.one_of(
    st.just("O"),
    st.builds(
        lambda p, t: f"{p}-{t}", st.sampled_from("BI"), st.from_regex(r"[A-Za-z_]{1,8}", fullmatch=True)
    ),
)


@SETTINGS
@given(
    rows=st.lists(st.lists(st.tuples(unicode_text, tag), min_size=1, max_size=6), min_size=1, max_size=5),
    data=st.data(),
)
def test_impacts_submission_round_trip_property(tmp_path: Path, rows: list, data: st.DataObject) -> None:
    row_ids = data.draw(
        st.lists(unicode_text.filter(lambda s: s.strip() != ""), min_size=len(rows), max_size=len(rows))
    )
    tokens = [[tok for tok, _ in row] for row in rows]
    tags = [[t for _, t in row] for row in rows]
    path = tmp_path / "sub.csv"
    write_impacts_submission(path, row_ids, tags, token_lists=tokens)
    back = read_impacts_submission(path)
    assert back["ID"].tolist() == row_ids and back["predicted_ner_tags"].tolist() == tags
    # The token lists survive the same list-literal format inside a Task 7 file.
    task7 = tmp_path / "task7.csv"
    frame = pd.DataFrame(
        {"tokens": [repr(t) for t in tokens], "ID": row_ids, "ner_tags": [repr(t) for t in tags]}
    )
    frame.to_csv(task7, index=False, quoting=csv.QUOTE_ALL)  # pandas leaves a lone \r unquoted
    assert read_impacts(task7)["tokens"].tolist() == tokens


def test_impacts_readers_take_conll_files(tmp_path: Path) -> None:
    """A CoNLL file goes wherever a Task 7 CSV goes (train, predict, score read through read_impacts)."""
    from medsift.io import read_impacts

    path = tmp_path / "dev.conll"
    path.write_text("I\tO\nwas\tO\nfired\tB-SOCIAL\n\nNo\tO\npain\tB-CLINICAL\n", encoding="utf-8")
    frame = read_impacts(path, labelled=True)
    assert frame["ID"].tolist() == ["dev_1", "dev_2"]
    assert frame["tokens"].tolist() == [["I", "was", "fired"], ["No", "pain"]]
    assert frame["ner_tags"].tolist() == [["O", "O", "B-SOCIAL"], ["O", "B-CLINICAL"]]
    path.write_text("I\tO\nwas\tX-BAD\n", encoding="utf-8")
    with pytest.raises(MedsiftError, match="row 2"):
        read_impacts(path)
