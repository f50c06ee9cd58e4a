"""Probability files keyed by uid: a run's own val/calib rows come from merged files whose ids repeat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medsift.decision import align_members, member_key
from medsift.errors import MedsiftError
from medsift.io import read_probabilities, write_probabilities


def _frame(**extra) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": ["en_1", "en_1", "en_2"], "language": ["en"] * 3, "p_ade": [0.1, 0.9, 0.5], **extra}
    )


def test_a_uid_column_lets_ids_repeat_and_round_trips(tmp_path: Path):
    path = tmp_path / "val_probabilities.csv"
    write_probabilities(
        path, _frame(label=[0, 1, 0], uid=["a:en_1", "b:en_1", "a:en_2"], source=["x", "y", "x"])
    )
    assert path.read_text().splitlines()[0] == "id,language,p_ade,label,uid"  # the public columns come first
    back = read_probabilities(path)
    assert back["id"].tolist() == ["en_1", "en_1", "en_2"]
    assert back["uid"].tolist() == ["a:en_1", "b:en_1", "a:en_2"]
    assert back["p_ade"].tolist() == [0.1, 0.9, 0.5]


def test_without_uid_ids_must_be_unique_and_with_it_uids_must(tmp_path: Path):
    with pytest.raises(MedsiftError, match="duplicate id 'en_1'"):
        write_probabilities(tmp_path / "p.csv", _frame())
    with pytest.raises(MedsiftError, match="duplicate uid 'a'"):
        write_probabilities(tmp_path / "p.csv", _frame(uid=["a", "a", "b"]))
    bad = tmp_path / "bad.csv"
    bad.write_text("id,language,p_ade,uid\nen_1,en,0.1,a\n,en,0.2,b\n", encoding="utf-8")
    with pytest.raises(MedsiftError, match="row 2: id is missing"):
        read_probabilities(bad)
    bad.write_text("id,language,p_ade\nen_1,en,0.1\nen_1,en,0.2\n", encoding="utf-8")
    with pytest.raises(MedsiftError, match="duplicate id"):
        read_probabilities(bad)


def test_members_are_aligned_on_uid_when_every_member_has_one():
    a = _frame(uid=["a:en_1", "b:en_1", "a:en_2"])
    b = a.iloc[[2, 0, 1]].assign(p_ade=[0.4, 0.2, 0.8])  # same rows, another order
    assert member_key({"a": a, "b": b}) == "uid"
    keys, matrix = align_members({"a": a, "b": b})
    assert keys.tolist() == ["a:en_1", "b:en_1", "a:en_2"]
    np.testing.assert_array_equal(matrix, [[0.1, 0.2], [0.9, 0.8], [0.5, 0.4]])


def test_a_member_without_uid_is_matched_by_id_and_repeated_ids_are_refused_clearly():
    run = _frame(uid=["a:en_1", "b:en_1", "a:en_2"])
    outside = pd.DataFrame({"id": ["en_1", "en_2"], "language": ["en", "en"], "p_ade": [0.3, 0.6]})
    assert member_key({"run": run, "outside": outside}) == "id"
    with pytest.raises(MedsiftError, match=r"ids that repeat \(en_1\).*'outside' have no uid column"):
        align_members({"run": run, "outside": outside})
    unique = run.iloc[[0, 2]]  # ids unique: matching by id works with or without uid
    keys, matrix = align_members({"run": unique, "outside": outside})
    assert keys.tolist() == ["en_1", "en_2"]
    np.testing.assert_array_equal(matrix, [[0.1, 0.3], [0.5, 0.6]])
