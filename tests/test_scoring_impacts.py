"""Task 7 scores: BIO spans, strict (seqeval default) and relaxed (official token overlap) F1."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report, f1_score

from medsift.errors import MedsiftError
from medsift.scoring import bio_from_spans, relaxed_scores, score_impacts, spans_from_bio, strict_scores

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
C, S = "ClinicalImpacts", "SocialImpacts"


def tags(text: str) -> list[str]:
    """Short hand: ``"B-C I-C O I-S"`` with C/S for the two official types."""
    return [t.replace("-C", f"-{C}").replace("-S", f"-{S}") for t in text.split()]


# ---------------------------------------------------------------- spans_from_bio, formats.md corner cases


def test_spans_corner_cases():
    assert spans_from_bio(tags("O I-C I-C O")) == [(C, 1, 3)]  # I- after O opens a span
    assert spans_from_bio(tags("B-C B-C I-C")) == [(C, 0, 1), (C, 1, 3)]  # adjacent same-type spans
    assert spans_from_bio(tags("B-S I-C I-C")) == [(S, 0, 1), (C, 1, 3)]  # I-X after B-Y opens X
    assert spans_from_bio(tags("B-C I-C")) == [(C, 0, 2)]  # a span running to the end
    assert spans_from_bio([]) == []
    with pytest.raises(ValueError, match="'_' at position 1"):
        spans_from_bio(["O", "_"])


def test_bio_writer_inverts_spans():
    spans = [(C, 0, 2), (C, 2, 3), (S, 5, 6)]
    assert bio_from_spans(spans, 6) == tags("B-C I-C B-C O O B-S")
    with pytest.raises(ValueError):
        bio_from_spans([(C, 4, 7)], 6)


# ---------------------------------------------------------------- relaxed, hand computed


def test_relaxed_prediction_overlapping_two_gold_spans_counts_once():
    gold = [tags("B-C I-C O B-C I-C")]
    pred = [tags("O B-C I-C I-C O")]  # one predicted span (1..4) overlaps both gold spans
    r = relaxed_scores(gold, pred)
    # gold span 1 (0..2) takes the prediction (overlap 1); it is then used, so gold span 2 gets nothing
    assert (r.overall["overlap"], r.overall["gold_tokens"], r.overall["pred_tokens"]) == (1, 4, 3)
    assert r.overall["precision"] == pytest.approx(1 / 3) and r.overall["recall"] == pytest.approx(1 / 4)
    assert r.f1 == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))


def test_relaxed_one_gold_span_collects_several_predictions_and_types_must_match():
    gold = [tags("B-C I-C I-C I-C O B-S")]
    pred = [tags("B-C O B-C I-C O B-C")]  # two C predictions inside gold C; a C where gold has S
    r = relaxed_scores(gold, pred)
    assert r.per_type[C] == pytest.approx(
        {"precision": 3 / 4, "recall": 3 / 4, "f1": 3 / 4, "overlap": 3, "gold_tokens": 4, "pred_tokens": 4}
    )
    assert r.per_type[S]["recall"] == 0.0 and r.per_type[S]["precision"] == 0.0  # no S predicted: 0, not NaN
    assert r.overall["overlap"] == 3 and r.overall["gold_tokens"] == 5 and r.overall["pred_tokens"] == 4
    assert r.rounded["overall"]["recall"] == 0.6 and r.rounded["per_type"][C]["f1"] == 0.75


def test_relaxed_rounding_matches_python_round_to_three_places():
    r = relaxed_scores([tags("B-C I-C I-C O O O")], [tags("B-C O O B-C I-C I-C")])
    assert r.overall["precision"] == pytest.approx(1 / 4)
    assert r.rounded["overall"]["recall"] == round(1 / 3, 3) == 0.333


def test_i_after_o_and_i_after_other_type_in_both_scores():
    gold = [tags("O I-C I-C O")]
    assert strict_scores(gold, gold).f1 == 1.0 and relaxed_scores(gold, gold).f1 == 1.0
    # I-C after B-S: strict sees S(0..1) + C(1..3); gold has one C(1..3) → P=1/2, R=1
    s = strict_scores([tags("O B-C I-C O")], [tags("B-S I-C I-C O")])
    assert (s.overall["precision"], s.overall["recall"]) == (0.5, 1.0)
    assert s.per_type[C]["f1"] == 1.0 and s.per_type[S]["f1"] == 0.0


def test_strict_requires_exact_boundaries():
    s = strict_scores([tags("B-C I-C O"), tags("B-S O O")], [tags("B-C O O"), tags("B-S O O")])
    assert s.overall["precision"] == 0.5 and s.overall["recall"] == 0.5 and s.per_type[S]["support"] == 1


def test_all_o_scores_zero_not_nan():
    for scorer in (strict_scores, relaxed_scores):
        assert scorer([["O", "O"]], [["O", "O"]]).f1 == 0.0


def test_length_mismatches_are_refused():
    with pytest.raises(MedsiftError, match="sequence 2: gold has 2 tags but prediction has 1"):
        relaxed_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(MedsiftError, match="gold has 1 sequences but prediction has 2"):
        strict_scores([["O"]], [["O"], ["O"]])


# ---------------------------------------------------------------- score_impacts on frames


def _frames(ids, gold_tags, pred_ids=None, pred_tags=None):
    gold = pd.DataFrame({"ID": ids, "ner_tags": gold_tags})
    pred = pd.DataFrame({"ID": pred_ids or ids, "predicted_ner_tags": pred_tags or gold_tags})
    return gold, pred


def test_score_impacts_joins_by_id_in_any_order():
    gold, pred = _frames(["a", "b"], [tags("B-C O"), tags("O B-S")])
    s = score_impacts(gold, pred.iloc[::-1])
    assert s.strict.f1 == 1.0 and s.relaxed.f1 == 1.0 and s.sequences == 2
    assert s.to_dict()["relaxed_rounded"]["overall"]["f1"] == 1.0


@pytest.mark.parametrize(
    ("pred_ids", "pred_tags", "message"),
    [
        (["a"], [tags("B-C O")], "missing IDs b"),
        (["a", "b", "c"], [tags("B-C O")] * 3, "not in gold: c"),
        (["a", "a"], [tags("B-C O")] * 2, "repeats IDs a"),
        (["a", "b"], [tags("B-C O"), tags("O")], "ID b: gold has 2 tags but prediction has 1"),
        (["a", "b"], [tags("B-C O"), ["O", "X"]], r"ID b \(prediction\): tag 'X'"),
    ],
)
def test_score_impacts_refusals(pred_ids, pred_tags, message):
    gold, pred = _frames(["a", "b"], [tags("B-C O"), tags("O B-S")], pred_ids, pred_tags)
    with pytest.raises(MedsiftError, match=message):
        score_impacts(gold, pred)


def test_repeated_gold_ids_align_by_position():
    gold, pred = _frames(["Train_1", "Train_1", "x"], [tags("B-C"), tags("O"), tags("B-S")])
    assert score_impacts(gold, pred).strict.f1 == 1.0
    swapped = pred.assign(predicted_ner_tags=[tags("O"), tags("B-C"), tags("B-S")])
    # rows compared in place: only S matches → P = R = 1/2
    assert score_impacts(gold, swapped).strict.f1 == pytest.approx(0.5)
    with pytest.raises(MedsiftError, match="row 3 is x in gold but y in prediction"):
        score_impacts(gold, pred.assign(ID=["Train_1", "Train_1", "y"]))
    with pytest.raises(MedsiftError, match="gold has 3 rows and prediction 2"):
        score_impacts(gold, pred.iloc[:2])


# ---------------------------------------------------------------- real data


def _simple_relaxed(gold_seqs, pred_seqs):
    """Deliberately plain reference: token sets per span, used-flags in a list."""
    hit = n_gold = n_pred = 0
    for gold, pred in zip(gold_seqs, pred_seqs, strict=True):

        def spans(seq):
            out, cur = [], None
            for i, t in enumerate(seq):
                if t == "O":
                    cur = None
                elif t.startswith("B-") or cur is None or cur[0] != t[2:]:
                    cur = (t[2:], [i])
                    out.append(cur)
                else:
                    cur[1].append(i)
            return out

        g, p = spans(gold), spans(pred)
        used = [False] * len(p)
        for kind, toks in g:
            for j, (pkind, ptoks) in enumerate(p):
                common = len(set(toks) & set(ptoks))
                if not used[j] and pkind == kind and common:
                    hit += common
                    used[j] = True
        n_gold += sum(len(t) for _, t in g)
        n_pred += sum(len(t) for _, t in p)
    precision, recall = hit / n_pred, hit / n_gold
    return precision, recall, 2 * precision * recall / (precision + recall)


def _perturb(seq: list[str], rng: np.random.Generator) -> list[str]:
    choices = ["O", f"B-{C}", f"I-{C}", f"B-{S}", f"I-{S}"]
    out = list(seq)
    for i in range(len(out)):
        if rng.random() < 0.05:
            out[i] = choices[rng.integers(len(choices))]
    return out


def test_real_task7_against_itself_and_perturbed_copies():
    path = DATA / "task7" / "train.csv"
    if not path.exists():
        pytest.skip("shared data not present")
    raw = pd.read_csv(path)
    gold = pd.DataFrame({"ID": raw["ID"], "ner_tags": raw["ner_tags"].map(ast.literal_eval)})
    same = score_impacts(gold, gold.rename(columns={"ner_tags": "predicted_ner_tags"}))
    assert same.strict.f1 == 1.0 and same.relaxed.f1 == 1.0 and same.sequences == len(raw)

    rng = np.random.default_rng(7)
    perturbed = [_perturb(seq, rng) for seq in gold["ner_tags"]]
    s = score_impacts(gold, pd.DataFrame({"ID": gold["ID"], "predicted_ner_tags": perturbed}))
    y_true = gold["ner_tags"].tolist()
    assert s.strict.f1 == pytest.approx(f1_score(y_true, perturbed))
    report = classification_report(y_true, perturbed, output_dict=True)
    assert s.strict.per_type[C]["f1"] == pytest.approx(report[C]["f1-score"])
    assert (s.relaxed.overall["precision"], s.relaxed.overall["recall"], s.relaxed.f1) == pytest.approx(
        _simple_relaxed(y_true, perturbed)
    )
    assert 0 < s.strict.f1 < s.relaxed.f1 < 1


# ---------------------------------------------------------------- properties

_tag = st.sampled_from(["O", f"B-{C}", f"I-{C}", f"B-{S}", f"I-{S}"])
_pairs = st.integers(1, 12).flatmap(
    lambda n: st.lists(
        st.tuples(st.lists(_tag, min_size=n, max_size=n), st.lists(_tag, min_size=n, max_size=n)),
        min_size=1,
        max_size=4,
    )
)


@settings(max_examples=150, deadline=None)
@given(_pairs)
def test_scores_are_in_unit_interval(pairs):
    gold, pred = [g for g, _ in pairs], [p for _, p in pairs]
    for scores in (strict_scores(gold, pred), relaxed_scores(gold, pred)):
        assert 0.0 <= scores.f1 <= 1.0
        assert all(0.0 <= v["f1"] <= 1.0 for v in scores.per_type.values())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_tag, min_size=1, max_size=12), min_size=1, max_size=4))
def test_gold_against_itself_is_perfect_when_it_has_spans(gold):
    has_spans = any(spans_from_bio(seq) for seq in gold)
    for scores in (strict_scores(gold, gold), relaxed_scores(gold, gold)):
        assert scores.f1 == (1.0 if has_spans else 0.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(_tag, max_size=20))
def test_spans_round_trip_through_the_bio_writer(seq):
    spans = spans_from_bio(seq)
    assert spans_from_bio(bio_from_spans(spans, len(seq))) == spans
    # and the writer produces canonical BIO (every span starts with B-) that seqeval reads the same way
    canonical = bio_from_spans(spans, len(seq))
    assert all(canonical[start].startswith("B-") for _, start, _ in spans)
