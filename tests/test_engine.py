"""Streaming prediction: chunked reading with medsift.io's rules, outputs in input order, formats, atomicity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medsift.errors import MedsiftError
from test_ade import make_ade_csv, tiny_config


@pytest.fixture(scope="module")
def ade_run(tiny_bert: Path, tmp_path_factory) -> Path:
    from medsift.ade.train import train

    tmp = tmp_path_factory.mktemp("engine")
    config = tiny_config(
        tiny_bert, make_ade_csv(tmp / "train.csv"), tmp / "run", training={"num_train_epochs": 2}
    )
    return train(config, quiet=True)


@pytest.fixture(scope="module")
def classifier(ade_run: Path):
    from medsift.ade import AdeClassifier

    return AdeClassifier.from_run(ade_run, device="cpu")


def test_chunked_scoring_equals_whole_file_scoring_in_input_order(ade_run, classifier, tmp_path: Path):
    from medsift.engine.streaming import predict_stream
    from medsift.io import read_ade_any, read_ade_submission, read_probabilities

    test_csv = make_ade_csv(tmp_path / "test.csv", n=23, seed=5)
    result = predict_stream(
        ade_run,
        test_csv,
        tmp_path / "sub.csv",
        chunk_rows=4,  # 6 chunks, the last one short
        probabilities=tmp_path / "probs.csv",
        quiet=True,
        classifier=classifier,
    )
    rows = read_ade_any(test_csv)
    whole = classifier.predict(rows["text"].tolist(), rows["language"].tolist())
    sub = read_ade_submission(tmp_path / "sub.csv")
    assert sub["id"].tolist() == rows["id"].tolist()
    assert sub["predicted_label"].tolist() == whole.labels.tolist()
    probs = read_probabilities(tmp_path / "probs.csv")  # medsift's own reader accepts the streamed file
    np.testing.assert_allclose(probs["p_ade"], whole.p_ade, atol=1e-6)
    assert probs["label"].tolist() == rows["label"].tolist() and "p_ade__seed7" in probs.columns
    assert result["rows"] == 23 and 0.0 <= result["scores"]["f1"] <= 1.0


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_jsonl_and_parquet_in_give_the_same_format_out(ade_run, classifier, tmp_path: Path, suffix: str):
    from medsift.engine.streaming import predict_stream

    texts = ["the medication caused nausea", "the weather is nice", "副作用で吐き気がする"]
    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": texts, "language": ["en", "en", "ja"]})
    source = tmp_path / f"in{suffix}"
    if suffix == ".json":  # a JSON array of objects
        source.write_text(json.dumps(frame.to_dict("records"), ensure_ascii=False))
    elif suffix == ".jsonl":
        source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in frame.to_dict("records")))
    else:
        frame.to_parquet(source)
    predict_stream(
        ade_run, source, tmp_path / f"out{suffix}", chunk_rows=2, quiet=True, classifier=classifier
    )
    out = (
        pd.read_json(tmp_path / f"out{suffix}", lines=True, dtype={"id": str})
        if suffix != ".parquet"
        else pd.read_parquet(tmp_path / f"out{suffix}")
    )
    assert out.columns.tolist() == ["id", "language", "p_ade", "predicted_label", "threshold"]
    assert out["id"].tolist() == ["a", "b", "c"]
    expected = classifier.predict(texts, ["en", "en", "ja"])
    np.testing.assert_allclose(out["p_ade"], expected.p_ade, atol=1e-6)
    assert out["predicted_label"].tolist() == expected.labels.tolist()


def test_a_duplicate_id_in_a_later_chunk_is_refused_and_no_output_appears(ade_run, classifier, tmp_path):
    from medsift.engine.streaming import predict_stream

    source = tmp_path / "posts.csv"
    pd.DataFrame({"id": ["x", "y", "z", "x"], "text": ["a b", "c d", "e f", "g h"]}).to_csv(
        source, index=False
    )
    with pytest.raises(MedsiftError, match=r"duplicate id 'x' \(rows 1 and 4\)") as info:
        predict_stream(ade_run, source, tmp_path / "out.csv", chunk_rows=2, quiet=True, classifier=classifier)
    assert info.value.row == 4
    assert not list(tmp_path.glob("out.csv*")) and not list(tmp_path.glob(".out.csv*"))


@pytest.mark.parametrize(
    ("content", "problem", "row"),
    [
        ("id,text\n1,fine\n1,   \n", "duplicate id", 2),
        ("id,text\n1,fine\n2,ok,extra\n", "row has 3 fields", 2),
        ("name,body\n1,x\n", "missing column", None),
    ],
)
def test_bad_rows_are_named_like_medsift_io_names_them(ade_run, classifier, tmp_path, content, problem, row):
    from medsift.engine.streaming import predict_stream

    source = tmp_path / "bad.csv"
    source.write_text(content)
    with pytest.raises(MedsiftError, match=problem) as info:
        predict_stream(ade_run, source, tmp_path / "o.csv", chunk_rows=1, quiet=True, classifier=classifier)
    assert info.value.row == row


def test_predict_file_entry_dispatches_local_and_refuses_unknown_engine(ade_run, tmp_path: Path):
    from medsift.engine.streaming import predict_file
    from medsift.io import read_ade_submission

    test_csv = make_ade_csv(tmp_path / "t.csv", n=6, seed=1)
    result = predict_file(ade_run, test_csv, tmp_path / "s.csv", quiet=True)
    assert result["rows"] == 6 and len(read_ade_submission(tmp_path / "s.csv")) == 6
    with pytest.raises(MedsiftError, match="unknown engine"):
        predict_file(ade_run, test_csv, tmp_path / "s.csv", engine="spark")


def test_the_predict_command_dispatcher_can_pass_backend_and_engine(ade_run, tmp_path: Path):
    # what `medsift predict --backend torch --engine local` does once the lead wires the two options
    from medsift.kinds import predict_file
    from medsift.runs import Run

    test_csv = make_ade_csv(tmp_path / "t.csv", n=5, seed=2)
    result = predict_file(
        Run.load(ade_run),
        test_csv,
        tmp_path / "s.csv",
        probabilities=None,
        spans_json=None,
        quiet=True,
        backend="torch",
        engine="local",
    )
    assert result["rows"] == 5
    with pytest.raises(MedsiftError, match="--spans-json does not apply"):
        predict_file(Run.load(ade_run), test_csv, tmp_path / "s.csv", spans_json=tmp_path / "x.json")
