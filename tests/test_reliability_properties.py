"""Property tests (hypothesis): ADE CSV round trips with arbitrary unicode, metric bounds and symmetry, BIO
utilities (repair, IO→BIO, voting) and atomic writes that fail half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medsift.impacts.bio import io_to_bio, repair_bio, tag_class, to_bio, vote_tags
from medsift.io import read_ade
from medsift.io._load import write_csv_rows
from medsift.io.atomic import atomic_write
from medsift.scoring.ade import score_group
from medsift.scoring.impacts import spans_from_bio

# Any unicode except NUL (refused by design) and surrogates (not encodable as UTF-8); at least one visible
# character so the text is not empty.
_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40
).filter(lambda s: s.strip() != "")
_id = st.text(st.characters(whitelist_categories=("L", "N"), max_codepoint=0x2FFF), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(_id, _text, st.sampled_from(["0", "1", "0.0", "1.0"])), min_size=1, max_size=8)
)
def test_ade_csv_round_trip_keeps_every_row_and_character(tmp_path_factory, rows):
    seen, unique = set(), []
    for row in rows:  # ids are unique within a file
        if row[0] not in seen:
            seen.add(row[0])
            unique.append(row)
    path = tmp_path_factory.mktemp("rt") / "ade.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        write_csv_rows(fh, ["id", "text", "label"], unique)
    frame = read_ade(path, labelled=True)
    assert frame["id"].tolist() == [r[0] for r in unique]
    assert frame["text"].tolist() == [r[1] for r in unique]
    assert frame["label"].tolist() == [int(float(r[2])) for r in unique]


_binary = st.lists(st.sampled_from([0, 1]), min_size=1, max_size=40)


@given(data=st.data(), y_true=_binary)
def test_ade_metrics_are_bounded_and_symmetric(data, y_true):
    y_pred = data.draw(st.lists(st.sampled_from([0, 1]), min_size=len(y_true), max_size=len(y_true)))
    s, swapped = score_group(y_true, y_pred), score_group(y_pred, y_true)
    for value in (s.f1, s.precision, s.recall, s.macro_f1_two_class):
        assert 0.0 <= value <= 1.0
    # F1 is symmetric in (gold, prediction); precision and recall swap
    assert s.f1 == pytest.approx(swapped.f1)
    assert s.macro_f1_two_class == pytest.approx(swapped.macro_f1_two_class)
    assert s.precision == pytest.approx(swapped.recall) and s.recall == pytest.approx(swapped.precision)
    perfect = score_group(y_true, y_true)
    assert perfect.f1 == (1.0 if any(y_true) else 0.0)
    assert s.support == len(y_true) and s.positives == sum(y_true)


_types = st.sampled_from(["ADR", "WD", "ClinicalImpacts"])
_bio_tag = st.one_of(st.just("O"), st.builds(lambda p, t: f"{p}-{t}", st.sampled_from(["B", "I"]), _types))
_tags = st.lists(_bio_tag, max_size=25)


def _well_formed(tags: list[str]) -> bool:
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and tag_class(tag) != previous:
            return False
        previous = tag_class(tag)
    return True


@given(_tags)
def test_repair_bio_is_well_formed_idempotent_and_keeps_classes_and_spans(tags):
    repaired = repair_bio(tags)
    assert len(repaired) == len(tags)
    assert _well_formed(repaired)
    assert repair_bio(repaired) == repaired
    assert [tag_class(t) for t in repaired] == [tag_class(t) for t in tags]
    # the scorer reads I-X after O the conlleval way too: repair never changes a score
    assert spans_from_bio(repaired) == spans_from_bio(tags)


@given(st.lists(st.one_of(st.just("O"), _types), max_size=25))
def test_io_to_bio_is_well_formed_and_keeps_classes(classes):
    bio = io_to_bio(classes)
    assert _well_formed(bio) and [tag_class(t) for t in bio] == classes
    assert to_bio(classes, "io") == bio


@given(_tags, st.integers(min_value=1, max_value=4))
def test_vote_of_identical_runs_is_the_repaired_run(tags, n):
    assert vote_tags([tags] * n) == repair_bio(tags)


@given(st.data(), st.integers(min_value=1, max_value=12), st.integers(min_value=2, max_value=5))
def test_vote_is_well_formed_and_picks_a_class_some_run_had(data, length, n):
    runs = [data.draw(st.lists(_bio_tag, min_size=length, max_size=length)) for _ in range(n)]
    voted = vote_tags(runs)
    assert len(voted) == length and _well_formed(voted)
    for i, tag in enumerate(voted):
        assert tag_class(tag) in {tag_class(r[i]) for r in runs}


# --- atomic writes ---------------------------------------------------------------------------------


def test_writer_failing_half_way_leaves_no_target_and_no_temp(tmp_path: Path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("id,predicted_label\n" + "x,1\n" * 1000)
        raise RuntimeError("killed half-way")
    assert list(tmp_path.iterdir()) == []


def test_writer_failing_half_way_keeps_the_previous_complete_file(tmp_path: Path, monkeypatch):
    from medsift.io import submissions, write_ade_submission

    target = tmp_path / "sub.csv"
    write_ade_submission(target, ["a", "b"], [1, 0])
    before = target.read_bytes()

    def half(fh, header, rows):  # write the header and one row, then die
        fh.write(",".join(header) + "\n")
        fh.write("a,1\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(submissions, "write_csv_rows", half)
    with pytest.raises(KeyboardInterrupt):
        write_ade_submission(target, ["a", "b", "c"], [1, 0, 1])
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sub.csv"]


_KILL_MID_WRITE = """
import os, signal, sys
from medsift.io.atomic import atomic_write
with atomic_write(sys.argv[1]) as fh:
    fh.write("id,predicted_label\\n" + "x,1\\n" * 5000)
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_sigkill_mid_write_never_leaves_a_truncated_target(tmp_path: Path):
    """A real SIGKILL (no clean-up runs): the target keeps its old complete content; at most a hidden .tmp."""
    target = tmp_path / "sub.csv"
    target.write_text("id,predicted_label\nold,1\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", _KILL_MID_WRITE, str(target)], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text(encoding="utf-8") == "id,predicted_label\nold,1\n"
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert all(name.startswith(".sub.csv.") and name.endswith(".tmp") for name in leftovers)
    assert os.path.exists(target)
