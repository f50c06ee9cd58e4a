"""Streaming tagger prediction (``medsift.engine.tagger_stream``): chunked equals whole-file, errors name the true row
and leave no output, repeated IDs kept, Parquet / CoNLL / raw-text inputs, the spans file's format, the progress
bar; and the chunked Task 7 reader raises exactly what ``read_impacts`` raises."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from medsift.engine.tagger_stream import predict_stream, span_records
from medsift.errors import MedsiftError
from medsift.io import read_conll, read_impacts, write_impacts_submission
from medsift.io.impacts_chunks import read_impact_chunks
from test_impacts_model import POSTS, _long_post, _write_csv
from test_reliability_cli import BYTE_FILES, corpus  # noqa: F401 (the fixture)
from test_reliability_cli_impacts import tagger_run  # noqa: F401 (the fixture: a tiny tagger run, 1 epoch)
from test_reliability_fuzz import FUZZ, HEADERS, PIECES

C, S = "ClinicalImpacts", "SocialImpacts"


class WordTagger:
    """A stand-in for ``SpanTagger`` without a model: a capitalised word opens a span, long words continue it.

    Its tags depend on each post alone, as a real tagger's do, so chunking must not change them."""

    def __init__(self):
        self.members = [None]
        self.calls: list[int] = []

    def tag(self, tokens_list, batch_size=None, *, progress=False):
        self.calls.append(len(tokens_list))
        out = []
        for words in tokens_list:
            tags, inside = [], False
            for word in words:
                if word[:1].isupper():
                    tags.append("B-X")
                    inside = True
                elif inside and len(word) > 3:
                    tags.append("I-X")
                else:
                    tags.append("O")
                    inside = False
            out.append(tags)
        return out


def _repeated_id_csv(path: Path) -> Path:
    """A labelled Task 7 CSV whose ID ``Train_1`` repeats (as in the official train file), with a long post."""
    rows = [*POSTS, (_long_post(40), ["O"] * 40), POSTS[0], POSTS[2]]
    _write_csv(path, rows)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[[4, 5], "ID"] = "Train_1"  # row 2 is Train_1 already
    frame.to_csv(path, index=False)
    return path


def _whole_file(tagger, path: Path, out: Path) -> tuple[bytes, list, list]:
    """What the tagger gives on the whole file at once: submission bytes, tags, gold (before streaming)."""
    frame = read_impacts(path)
    tags = tagger.tag(frame["tokens"].tolist())
    write_impacts_submission(out, frame["ID"].tolist(), tags, token_lists=frame["tokens"].tolist())
    return out.read_bytes(), tags, frame["ner_tags"].tolist()


def _no_outputs(folder: Path, *names: str) -> bool:
    return not [p for p in folder.iterdir() if any(p.name.lstrip(".").startswith(n) for n in names)]


@pytest.mark.parametrize("chunk_rows", [1, 2, 10_000])
def test_chunked_prediction_equals_whole_file_prediction(tagger_run, tmp_path, chunk_rows):  # noqa: F811
    from medsift.impacts.predict import SpanTagger, score_tags

    tagger = SpanTagger.from_run(tagger_run)
    source = _repeated_id_csv(tmp_path / "dev.csv")
    expected, tags, gold = _whole_file(tagger, source, tmp_path / "whole.csv")
    result = predict_stream(
        tagger_run,
        source,
        tmp_path / "sub.csv",
        spans_json=tmp_path / "s.json",
        chunk_rows=chunk_rows,
        quiet=True,
    )
    assert (tmp_path / "sub.csv").read_bytes() == expected
    frame = read_impacts(source)
    records = span_records(frame["ID"].tolist(), frame["tokens"].tolist(), tags, None)
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8")) == records
    assert result["scores"] == score_tags(gold, tags)
    assert result["rows"] == 7 and result["spans"] > 0 and result["members"] == 1
    assert result["tokens"] == sum(len(t) for t in frame["tokens"])

    # raw text: words split the same way, spans with character offsets into each post
    texts = ["I overdosed and lost my job.", "Withdrawal 😩 again", "все хорошо", "x" * 3 + " ok"]
    source = tmp_path / "posts.jsonl"
    source.write_text("".join(json.dumps({"id": f"p{n}", "text": t}) + "\n" for n, t in enumerate(texts)))
    predict_stream(
        tagger_run,
        source,
        tmp_path / "raw.csv",
        spans_json=tmp_path / "r.json",
        chunk_rows=chunk_rows,
        quiet=True,
    )
    from medsift.impacts.words import split_words

    words = [split_words(t) for t in texts]
    raw_tags = tagger.tag([[w.text for w in ws] for ws in words])
    write_impacts_submission(tmp_path / "raw_whole.csv", [f"p{n}" for n in range(4)], raw_tags)
    assert (tmp_path / "raw.csv").read_bytes() == (tmp_path / "raw_whole.csv").read_bytes()
    for text, record in zip(texts, json.loads((tmp_path / "r.json").read_text()), strict=True):
        assert all(text[s["start_char"] : s["end_char"]] == s["text"] for s in record["spans"])


def _bad_later_chunk(tmp_path: Path, kind: str) -> tuple[Path, int]:
    """A file whose row 5 (line 5) is bad; with 2 posts a chunk, rows 1-4 are tagged first."""
    good = [(["I", "overdosed"], ["O", f"B-{C}"])] * 4
    if kind == "csv":
        path = _write_csv(tmp_path / "in.csv", good, labelled=False)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("Test_4,\"['broken'\"\n")
    elif kind == "jsonl":  # an id repeated from the first chunk
        path = tmp_path / "in.jsonl"
        path.write_text("".join(json.dumps({"id": i, "text": "I overdosed"}) + "\n" for i in "abcda"))
    elif kind == "txt":
        path = tmp_path / "in.txt"
        path.write_bytes(b"one\ntwo\nthree\nfour\ncaf\xe9\n")
    else:  # Parquet with an empty token list
        path = tmp_path / "in.parquet"
        pd.DataFrame({"ID": list("abcde"), "tokens": [["I", "x"]] * 4 + [[]]}).to_parquet(path)
    return path, 5


@pytest.mark.parametrize("kind", ["csv", "jsonl", "txt", "parquet"])
def test_a_bad_row_in_a_later_chunk_is_named_and_no_output_appears(tmp_path, kind):
    source, row = _bad_later_chunk(tmp_path, kind)
    tagger = WordTagger()
    with pytest.raises(MedsiftError) as info:
        predict_stream(
            None,
            source,
            tmp_path / "out.csv",
            spans_json=tmp_path / "sp.json",
            chunk_rows=2,
            quiet=True,
            tagger=tagger,
        )
    assert info.value.row == row and info.value.file == str(source)
    assert tagger.calls == [2, 2]  # the first chunks were tagged and written before the bad row was read
    assert _no_outputs(tmp_path, "out.csv", "sp.json")


def test_a_repeated_id_is_kept_one_row_each_in_order(tmp_path):
    source = _repeated_id_csv(tmp_path / "dev.csv")
    expected, _, _ = _whole_file(WordTagger(), source, tmp_path / "whole.csv")
    result = predict_stream(None, source, tmp_path / "sub.csv", chunk_rows=2, quiet=True, tagger=WordTagger())
    assert (tmp_path / "sub.csv").read_bytes() == expected
    ids = pd.read_csv(tmp_path / "sub.csv", dtype=str)["ID"].tolist()
    assert ids == read_impacts(source)["ID"].tolist() and ids.count("Train_1") == 3
    assert result["rows"] == 7 and "scores" in result


def test_the_official_train_file_streams_like_the_whole_file(shared_data, tmp_path):
    train = shared_data / "task7" / "train.csv"
    if not train.exists():
        pytest.skip("no official Task 7 train file")
    expected, _, _ = _whole_file(WordTagger(), train, tmp_path / "whole.csv")
    result = predict_stream(None, train, tmp_path / "sub.csv", chunk_rows=64, quiet=True, tagger=WordTagger())
    assert (tmp_path / "sub.csv").read_bytes() == expected  # Train_1 (and others) repeat: every row kept
    assert result["rows"] == len(read_impacts(train)) and "scores" in result


def test_parquet_in_tokens_or_text(tmp_path):
    source = _repeated_id_csv(tmp_path / "dev.csv")
    frame = read_impacts(source)
    frame[["ID", "tokens", "ner_tags"]].to_parquet(tmp_path / "dev.parquet")
    csv_result = predict_stream(
        None, source, tmp_path / "a.csv", chunk_rows=3, quiet=True, tagger=WordTagger()
    )
    result = predict_stream(
        None, tmp_path / "dev.parquet", tmp_path / "b.csv", chunk_rows=3, quiet=True, tagger=WordTagger()
    )
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    assert result == csv_result  # scores included
    pd.read_csv(source, dtype=str, keep_default_na=False).to_parquet(tmp_path / "literals.parquet")
    predict_stream(None, tmp_path / "literals.parquet", tmp_path / "l.csv", quiet=True, tagger=WordTagger())
    assert (tmp_path / "l.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()  # cells as in the CSV

    unlabelled = pd.DataFrame({"ID": [1, 2], "tokens": [["I", "overdosed"], ["Lost", "everything"]]})
    unlabelled["ner_tags"] = None
    unlabelled.to_parquet(tmp_path / "test.parquet")
    result = predict_stream(
        None, tmp_path / "test.parquet", tmp_path / "c.csv", quiet=True, tagger=WordTagger()
    )
    assert "scores" not in result and pd.read_csv(tmp_path / "c.csv", dtype=str)["ID"].tolist() == ["1", "2"]

    texts = pd.DataFrame({"id": ["a", "b"], "text": ["I overdosed", "Lost everything today"]})
    texts.to_parquet(tmp_path / "posts.parquet")
    (tmp_path / "posts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in texts.to_dict("records")))
    predict_stream(None, tmp_path / "posts.parquet", tmp_path / "d.csv", quiet=True, tagger=WordTagger())
    predict_stream(None, tmp_path / "posts.jsonl", tmp_path / "e.csv", quiet=True, tagger=WordTagger())
    assert (tmp_path / "d.csv").read_bytes() == (tmp_path / "e.csv").read_bytes()

    pd.DataFrame({"ID": ["a"], "body": ["x"]}).to_parquet(tmp_path / "neither.parquet")
    with pytest.raises(MedsiftError, match="missing column tokens"):
        predict_stream(
            None, tmp_path / "neither.parquet", tmp_path / "f.csv", quiet=True, tagger=WordTagger()
        )


def test_conll_in_is_tagged_and_scored(tmp_path):
    source = tmp_path / "psytar.conll"
    source.write_text("I\tO\nQuit\tB-WD\ncold\tI-WD\n\nSleep\tB-ADR\nbadly\tI-ADR\n", encoding="utf-8")
    frame = read_conll(source)
    expected, _, _ = _whole_file(WordTagger(), source, tmp_path / "whole.csv")
    result = predict_stream(None, source, tmp_path / "sub.csv", chunk_rows=1, quiet=True, tagger=WordTagger())
    assert (tmp_path / "sub.csv").read_bytes() == expected
    assert result["rows"] == len(frame) == 2 and "scores" in result


@pytest.mark.parametrize("chunk_rows", [1, 1000])
def test_the_spans_file_keeps_its_json_array_format(tmp_path, chunk_rows):
    texts = ["I overdosed and Lost everything", "nothing here", "Withdrawal again 😩"]
    source = tmp_path / "posts.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    predict_stream(
        None,
        source,
        tmp_path / "sub.csv",
        spans_json=tmp_path / "s.json",
        chunk_rows=chunk_rows,
        quiet=True,
        tagger=WordTagger(),
    )
    from medsift.impacts.words import split_words

    words = [split_words(t) for t in texts]
    tokens = [[w.text for w in ws] for ws in words]
    records = span_records(["1", "2", "3"], tokens, WordTagger().tag(tokens), (texts, words))
    written = (tmp_path / "s.json").read_text(encoding="utf-8")
    assert written == json.dumps(records, indent=1, ensure_ascii=False) + "\n"  # as before streaming
    assert records[0]["spans"] and records[0]["spans"][0]["start_char"] == 0


def test_the_progress_bar_counts_posts_and_quiet_switches_it_off(tmp_path, capsys):
    source = _write_csv(tmp_path / "in.csv", POSTS, labelled=False)
    capsys.readouterr()
    predict_stream(None, source, tmp_path / "a.csv", chunk_rows=2, tagger=WordTagger())
    err = capsys.readouterr().err
    assert "posts: 4post" in err  # tqdm counts posts, chunk by chunk
    predict_stream(None, source, tmp_path / "b.csv", chunk_rows=2, quiet=True, tagger=WordTagger())
    assert capsys.readouterr().err == ""


# --- the chunked Task 7 reader names what read_impacts names ---------------------------------------------

CONSTRUCTED = {
    # read_impacts reads ner_tags when any row has them: row 1's empty cell is then the error
    "tags only from row 3": "ID,tokens,ner_tags\na,\"['x']\",\nb,\"['y']\",\nc,\"['z']\",\"['O']\"\n",
    "labels only from row 2": (
        "ID,tokens,ner_tags,labels\na,\"['x']\",\"['O']\",\nb,\"['y']\",\"['O']\",\"['_']\"\n"
    ),
    "labels without tags are ignored": "ID,tokens,ner_tags,labels\na,\"['x']\",,\nb,\"['y']\",,\"['_']\"\n",
    # whole-file checks come first: a field count, a NUL, an invalid byte after a bad cell
    "short row after a bad cell": "ID,tokens\na,\"['x'\"\nb,\"['y']\"\nc\n",
    "NUL after a bad cell": "ID,tokens\na,[x]\nb,\"['y\x00']\"\n",
    "lone CR": "ID,tokens\na,\"['x']\"\rb,\"['y']\"\n",
    "blank first line": "\nID,tokens\na,\"['x']\"\n",
    "whitespace only": "  \n\t\n",
    "header only": "ID,tokens\n",
    "valid, repeated IDs": "ID,tokens\na,\"['x']\"\na,\"['y', 'z']\"\n",
}


def _outcome(read):
    try:
        return "ok", read()
    except MedsiftError as exc:
        return "error", (exc.problem, exc.row)


def _same_as_read_impacts(path: Path, chunk_rows: int) -> None:
    whole = _outcome(lambda: read_impacts(path)[["ID", "tokens", "ner_tags", "labels"]])
    streamed = _outcome(lambda: pd.concat(list(read_impact_chunks(path, chunk_rows))).reset_index(drop=True))
    if whole[0] == "error" and whole[1][0].startswith("cannot parse as CSV: EOF inside string"):
        assert streamed[0] == "error"  # pandas refuses an unterminated quote the csv module reads to the end
    elif whole[0] == "ok":
        assert streamed[0] == "ok", streamed
        pd.testing.assert_frame_equal(streamed[1], whole[1])
    else:
        assert streamed == whole


@pytest.mark.parametrize("chunk_rows", [1, 3])
@pytest.mark.parametrize("name", sorted(CONSTRUCTED))
def test_constructed_cases_read_like_read_impacts(tmp_path, name, chunk_rows):
    path = tmp_path / "case.csv"
    path.write_bytes(CONSTRUCTED[name].encode("utf-8"))
    _same_as_read_impacts(path, chunk_rows)


@pytest.mark.parametrize(
    "name",
    sorted(
        {"impacts_code_in_cell.csv", "impacts_empty_tokens.csv", "impacts_length_mismatch.csv"}
        | {"impacts_malformed_list.csv", "impacts_not_strings.csv", "impacts_unknown_tag.csv"}
        | {"impacts_surrogate_token.csv", "ade_empty.csv", "ade_header_only.csv", "crlf_bad_label.csv"}
        | set(BYTE_FILES)
        - {"posts_invalid_utf8.txt", "posts_nul.txt", "posts_empty.txt", "posts_blank_lines.txt"}
    ),
)
def test_the_bad_input_corpus_reads_like_read_impacts(corpus, tmp_path, name):  # noqa: F811
    _same_as_read_impacts(corpus[name], 1)


_CSV_PIECES = [*PIECES, "\n", "\n", ",", "t1", "\"['a', 'b']\"", "\"['O', 'O']\"", "\"['B-X']\"", "\"['x']\""]


@FUZZ
@given(
    header=st.sampled_from([*HEADERS, "ID,tokens,ner_tags\n"]),
    body=st.lists(st.sampled_from(_CSV_PIECES), max_size=40),
    chunk_rows=st.sampled_from([1, 2, 100]),
)
def test_any_csv_like_file_streams_like_read_impacts(tmp_path_factory, header, body, chunk_rows):
    path = tmp_path_factory.getbasetemp() / "fuzz_stream.csv"
    path.write_bytes((header + "".join(body)).encode("utf-8"))
    _same_as_read_impacts(path, chunk_rows)


def test_the_submission_rows_of_a_streamed_file_are_checked_with_output_rows(tmp_path):
    class BadTagger(WordTagger):
        def tag(self, tokens_list, batch_size=None, *, progress=False):
            tags = super().tag(tokens_list)
            return [["Q"] * len(t) for t in tags] if self.calls == [2, 2] else tags

    source = _write_csv(tmp_path / "in.csv", POSTS, labelled=False)
    with pytest.raises(MedsiftError, match="predicted_ner_tags: tag 1 is 'Q'") as info:
        predict_stream(None, source, tmp_path / "out.csv", chunk_rows=2, quiet=True, tagger=BadTagger())
    assert info.value.row == 3 and info.value.file == str(tmp_path / "out.csv")
    assert _no_outputs(tmp_path, "out.csv")


def test_odd_csv_rows_stream_with_bom_and_crlf(tmp_path):
    source = tmp_path / "odd.csv"
    with source.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(["ID", "tokens"])
        writer.writerow(["NaN", repr(["a\rb", "Line\nbreak", "😵‍💫"])])
        writer.writerow(["", repr(["x"])])
    with pytest.raises(MedsiftError, match="ID is missing") as info:
        predict_stream(None, source, tmp_path / "o.csv", chunk_rows=1, quiet=True, tagger=WordTagger())
    assert info.value.row == 2
    _same_as_read_impacts(source, 1)
