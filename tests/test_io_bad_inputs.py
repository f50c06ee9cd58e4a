"""Every bad input raises MedsiftError naming the file, the row and the problem; odd-but-valid input reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from medsift.errors import MedsiftError
from medsift.io import (
    read_ade,
    read_ade_submission,
    read_conll,
    read_impacts,
    read_impacts_submission,
    read_posts,
    read_probabilities,
    read_texts,
)

BAD = Path(__file__).parent / "data" / "bad"
GOOD = Path(__file__).parent / "data" / "good"
ADE_HEADER = b"id,text,label,origin,type,language,split\n"

# file name -> (reader, expected row or None for a whole-file problem, words the message must contain)
CASES = {
    "ade_missing_label.csv": (
        lambda p: read_ade(p, labelled=True),
        None,
        ["missing column", "label", "'id'"],
    ),
    "ade_missing_text.csv": (read_ade, None, ["missing column", "text", "columns found"]),
    "ade_semicolon.csv": (read_ade, None, ["missing column", "semicolon", "comma-separated"]),
    "ade_tab.csv": (read_ade, None, ["missing column", "tab"]),
    "ade_header_only.csv": (read_ade, None, ["no data rows"]),
    "ade_empty.csv": (read_ade, None, ["empty"]),
    "ade_label_yes.csv": (read_ade, 2, ["label is 'yes'", "expected 0 or 1"]),
    "ade_label_2.csv": (read_ade, 2, ["label is '2'"]),
    "ade_label_minus1.csv": (read_ade, 2, ["label is '-1'"]),
    "ade_label_1_5.csv": (read_ade, 2, ["label is '1.5'"]),
    "ade_label_empty.csv": (read_ade, 2, ["label is empty"]),
    "ade_duplicate_id.csv": (read_ade, 3, ["duplicate id 'en_1'", "rows 1 and 3"]),
    "ade_missing_id.csv": (read_ade, 2, ["id is missing"]),
    "ade_short_row.csv": (read_ade, 2, ["5 fields", "fewer"]),
    "ade_bad_quote.csv": (read_ade, 2, ["fields"]),
    "impacts_length_mismatch.csv": (read_impacts, 1, ["3 tokens but 2 ner_tags"]),
    "impacts_unknown_tag.csv": (read_impacts, 1, ["'X-Foo'", "B-<type>"]),
    "impacts_malformed_list.csv": (read_impacts, 1, ["tokens is not a valid list literal"]),
    "impacts_not_strings.csv": (read_impacts, 1, ["list of strings"]),
    "impacts_empty_tokens.csv": (read_impacts, 1, ["empty list"]),
    "impacts_code_in_cell.csv": (read_impacts, 1, ["must be a list literal"]),
    "impacts_submission_bad_tag.csv": (read_impacts_submission, 1, ["'B-'"]),
    "submission_duplicate_id.csv": (read_ade_submission, 3, ["duplicate id 'en_1'"]),
    "submission_label_2.csv": (read_ade_submission, 2, ["predicted_label is '2'"]),
    "submission_missing_column.csv": (read_ade_submission, None, ["missing column", "predicted_label"]),
    "probabilities_out_of_range.csv": (read_probabilities, 2, ["p_ade is '1.2'", "[0, 1]"]),
    "probabilities_nan.csv": (read_probabilities, 2, ["p_ade is 'nan'"]),
    "probabilities_not_a_number.csv": (
        read_probabilities,
        2,
        ["p_ade is 'high'", "a number between 0 and 1"],
    ),
    "probabilities_duplicate_id.csv": (read_probabilities, 3, ["duplicate id 'en_1'", "rows 1 and 3"]),
    "probabilities_header_only.csv": (read_probabilities, None, ["no data rows"]),
    "probabilities_missing_column.csv": (
        read_probabilities,
        None,
        ["missing column", "p_ade", "'probability'"],
    ),
    "probabilities_label_yes.csv": (read_probabilities, 2, ["label is 'yes'"]),
    "conll_missing_tag.txt": (read_conll, 4, ["TOKEN<TAB>TAG", "'then'"]),
    "conll_bad_tag.txt": (read_conll, 5, ["'X-Foo'"]),
    "texts_bad_json.jsonl": (read_texts, 2, ["invalid JSON"]),
    "texts_no_text.jsonl": (read_texts, 3, ["no 'text' field", "body"]),
    "texts_surrogate.jsonl": (read_texts, 2, ["lone surrogate", "UTF-8"]),
    "impacts_surrogate_token.csv": (read_impacts, 1, ["tokens holds a lone surrogate"]),
}


def test_every_corpus_file_has_a_case() -> None:
    assert sorted(p.name for p in BAD.iterdir()) == sorted(CASES)


def _check(error: MedsiftError, path: Path, row: int | None, words: list[str]) -> None:
    message = str(error)
    assert error.file == str(path)
    assert message.startswith(str(path))
    assert error.row == row, message
    if row is not None:
        assert f"row {row}:" in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file_is_refused_with_file_row_and_problem(name: str) -> None:
    reader, row, words = CASES[name]
    path = BAD / name
    with pytest.raises(MedsiftError) as info:
        reader(path)
    _check(info.value, path, row, words)


# Byte-level cases are generated, not committed, so that no tool rewrites their bytes.
BYTE_CASES = {
    "invalid_utf8.csv": (
        ADE_HEADER + b"en_1,fine,0.0,x,t,en,s\nen_2,caf\xe9,1.0,x,t,en,s\n",
        2,
        ["invalid UTF-8 byte 0xe9", "line 3"],
    ),
    "latin1_in_header.csv": (b"id,t\xe9xt\nen_1,x\n", None, ["invalid UTF-8", "line 1"]),
    "invalid_after_multiline.csv": (
        ADE_HEADER + b'en_1,"two\nlines",0.0,x,t,en,s\nen_2,\xff,1.0,x,t,en,s\n',
        2,
        ["line 4"],
    ),
    "nul.csv": (ADE_HEADER + b"en_1,fine,0.0,x,t,en,s\nen_2,bad\x00byte,1.0,x,t,en,s\n", 2, ["NUL"]),
    "bom_only.csv": (b"\xef\xbb\xbf", None, ["empty"]),
    "whitespace_only.csv": (b"\n\n  \r\n", None, ["empty"]),
}


@pytest.mark.parametrize("name", sorted(BYTE_CASES))
def test_bad_bytes_are_refused(tmp_path: Path, name: str) -> None:
    data, row, words = BYTE_CASES[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(MedsiftError) as info:
        read_ade(path)
    _check(info.value, path, row, words)


def test_invalid_utf8_in_jsonl_and_conll_names_the_line(tmp_path: Path) -> None:
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(MedsiftError, match=r"row 2: invalid UTF-8"):
        read_texts(jsonl)
    conll = tmp_path / "x.txt"
    conll.write_bytes(b"a\tO\n\nb\tO\n\xff\tO\n")
    with pytest.raises(MedsiftError, match=r"row 4: invalid UTF-8"):
        read_conll(conll)


@pytest.mark.parametrize("column", ["id", "text", "language"])
@pytest.mark.parametrize("reader", ["read_texts", "read_ade_any", "read_chunks"])
def test_nul_in_a_parquet_value_is_refused_naming_file_row_and_column(tmp_path: Path, column, reader) -> None:
    """Parquet values never pass the text check CSV and JSON lines get on reading: they are checked as values
    (by the readers of medsift.io and by the streaming reader behind ``medsift predict``)."""
    from medsift.engine.streaming import read_chunks
    from medsift.io import read_ade_any

    frame = pd.DataFrame({"id": ["p1", "p2", "p3"], "text": ["fine", "also fine", "ok"], "language": "en"})
    frame.loc[1, column] = frame.loc[1, column][:2] + "\x00" + frame.loc[1, column][2:]
    path = tmp_path / "posts.parquet"
    frame.to_parquet(path)
    read = {
        "read_texts": read_texts,
        "read_ade_any": read_ade_any,
        "read_chunks": lambda p: list(read_chunks(p, chunk_rows=2)),
    }[reader]
    with pytest.raises(MedsiftError) as err:
        read(path)
    assert err.value.file == str(path) and err.value.row == 2
    assert str(err.value) == f"{path}: row 2: NUL character (\\x00) in {column}"


def test_plain_text_posts_are_cut_at_newlines_only(tmp_path: Path) -> None:
    path = tmp_path / "posts.txt"
    path.write_bytes(b"\xef\xbb\xbffirst\r\n\r\nsecond\xe2\x80\xa8same post\x1cstill\n \t\nthird")
    assert read_posts(path) == ([1, 3, 5], ["first", "second\u2028same post\x1cstill", "third"])
    for data in (b"", b"\xef\xbb\xbf", b"\n \r\n\t\n"):
        path.write_bytes(data)
        with pytest.raises(MedsiftError) as info:
            read_posts(path)
        _check(info.value, path, None, ["no posts", "one post per line"])
    path.write_bytes(b"ok\nbad\x00\n")
    with pytest.raises(MedsiftError, match="row 2: NUL"):
        read_posts(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(MedsiftError, match="file not found"):
        read_ade(tmp_path / "nope.csv")
    with pytest.raises(MedsiftError, match="folder"):
        read_ade(tmp_path)


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom_crlf.csv"
    body = (ADE_HEADER + b"en_1,I felt dizzy,1.0,x,tweet,en,train\nen_2,fine,0.0,x,tweet,en,train\n").replace(
        b"\n", b"\r\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + body)
    frame = read_ade(path)
    assert frame["id"].tolist() == ["en_1", "en_2"]
    assert frame["text"].tolist() == ["I felt dizzy", "fine"]
    assert frame["split"].tolist() == ["train", "train"]
    assert frame["label"].tolist() == [1, 0]


def test_one_megabyte_post_is_valid(tmp_path: Path) -> None:
    text = ("I took 20mg and felt dizzy, nauseous; " * 30_000)[:1_000_000]
    path = tmp_path / "big.csv"
    pd.DataFrame({"id": ["big"], "text": [text], "label": ["1.0"]}).to_csv(path, index=False)
    frame = read_ade(path)
    assert frame["text"].iloc[0] == text
    assert len(frame["text"].iloc[0]) == 1_000_000


def test_unicode_control_characters_and_extra_columns_are_kept() -> None:
    path = GOOD / "ade_unicode.csv"
    frame = read_ade(path)
    texts = dict(zip(frame["id"], frame["text"], strict=True))
    assert texts["fa_1"] == "این دارو باعث سردرد شد"
    assert texts["emoji_1"] == "😵‍💫💊🤢"
    assert texts["he_1"].startswith("\u202b")
    assert "\x07" in texts["ctrl_1"] and "\x1b[0m" in texts["ctrl_1"] and "\u2028" in texts["ctrl_1"]
    assert texts["nl_1"] == 'multi\nline\r\npost with "quotes", commas'
    # Nothing is coerced: the string "NaN" is an id and a text like any other.
    assert texts["NaN"] == "NaN"
    assert frame["label"].tolist() == [1, 0, 0, 1, 0, 1, 0]
    assert frame.loc[frame["id"] == "emoji_1", "language"].item() == ""
    assert frame["note"].eq("extra column kept").all()
    assert list(frame.columns[:9]) == [
        "id",
        "text",
        "label",
        "language",
        "origin",
        "type",
        "split",
        "source",
        "uid",
    ]


def test_impacts_literal_is_never_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.csv"
    path.write_text(f"ID,tokens\nt1,\"[open({str(marker)!r}, 'w')]\"\n", encoding="utf-8")
    with pytest.raises(MedsiftError, match="row 1: tokens is not a valid list literal"):
        read_impacts(path)
    assert not marker.exists()


def test_label_set_refuses_types_outside_it(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "tokens,ID,ner_tags\n\"['a', 'b']\",t1,\"['B-ADR', 'I-ADR']\"\n\"['c']\",t2,\"['B-WD']\"\n"
    )
    assert len(read_impacts(path, label_set=["ADR", "WD"])) == 2
    assert len(read_impacts(path, label_set=["B-ADR", "I-ADR", "B-WD", "O"])) == 2
    with pytest.raises(
        MedsiftError, match=r"row 2: ner_tags: tag 1 'B-WD' has an unknown type \(known: ADR\)"
    ):
        read_impacts(path, label_set=["ADR"])


def test_labelled_true_without_label_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("ID,tokens\nt1,\"['a']\"\n")
    with pytest.raises(MedsiftError, match=r"missing column.*ner_tags"):
        read_impacts(path, labelled=True)
