"""Task 1 scores: hand-computed cases, refusals, and the real files against themselves and perturbed copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from medsift.errors import MedsiftError
from medsift.scoring import score_ade

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def frames(rows: list[tuple[str, str, int, int]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(id, language, gold, predicted) rows → gold and prediction frames."""
    gold = pd.DataFrame([(i, lang, g) for i, lang, g, _ in rows], columns=["id", "language", "label"])
    pred = pd.DataFrame([(i, p) for i, _, _, p in rows], columns=["id", "predicted_label"])
    return gold, pred


def test_pooled_f1_is_micro_over_rows_not_mean_of_languages():
    # en: tp=1 fp=1 fn=0 → P=.5 R=1 F1=2/3;  de: tp=1 fp=0 fn=1 → P=1 R=.5 F1=2/3;  ja: tp=0 fn=1 → F1=0
    gold, pred = frames(
        [
            ("en_1", "en", 1, 1),
            ("en_2", "en", 0, 1),
            ("en_3", "en", 0, 0),
            ("de_1", "de", 1, 1),
            ("de_2", "de", 1, 0),
            ("ja_1", "ja", 1, 0),
        ]
    )
    s = score_ade(gold, pred)
    assert s.per_language["en"].f1 == pytest.approx(2 / 3)
    assert s.per_language["de"].precision == 1.0 and s.per_language["de"].recall == 0.5
    assert s.per_language["ja"].f1 == 0.0
    # pooled: tp=2 fp=1 fn=2 → P=2/3 R=1/2 F1=4/7, not the mean (2/3+2/3+0)/3
    assert s.f1 == pytest.approx(4 / 7)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(0.5)
    assert (s.support, s.positives, s.predicted_positives) == (6, 4, 3)
    # class 0 pooled: tp0=1 (en_3), fp0=2 (de_2, ja_1), fn0=1 (en_2) → F1_0 = 2/(2+3) = 0.4
    assert s.macro_f1_two_class == pytest.approx((4 / 7 + 0.4) / 2)


def test_cadec_rows_are_their_own_language_and_left_out_of_overall():
    gold, pred = frames(
        [
            ("de_1", "de", 1, 1),
            ("de_2", "de", 0, 0),
            ("de_cadecv2_1", "de", 1, 0),
            ("fr_cadecv2_7", "fr", 0, 1),
        ]
    )
    s = score_ade(gold, pred)
    assert set(s.per_language) == {"de", "de_cadec", "fr_cadec"}
    assert s.f1 == 1.0 and s.support == 2
    assert s.per_language["de_cadec"].f1 == 0.0 and s.per_language["fr_cadec"].support == 1
    assert s.to_dict()["overall_excludes"] == ["de_cadec", "fr_cadec"]


def test_language_without_positives_scores_zero_like_sklearn_zero_division():
    gold, pred = frames([("en_1", "en", 0, 0), ("en_2", "en", 0, 0), ("de_1", "de", 1, 1)])
    s = score_ade(gold, pred)
    assert s.per_language["en"].f1 == 0.0  # sklearn's default "warn" → 0.0, which the official scorer uses
    assert s.per_language["en"].macro_f1_two_class == 0.5  # class 0 is perfect, class 1 undefined → 0
    assert s.f1 == 1.0


def test_labels_given_as_floats_or_strings_are_accepted():
    gold, pred = frames([("a", "en", 1, 1), ("b", "en", 0, 0)])
    pred["predicted_label"] = ["1.0", 0.0]
    assert score_ade(gold, pred).f1 == 1.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.iloc[:-1], "missing ids en_3"),
        (
            lambda p: pd.concat([p, pd.DataFrame({"id": ["zz_9"], "predicted_label": [1]})]),
            "not in the gold file: zz_9",
        ),
        (lambda p: pd.concat([p, p.iloc[:1]]), "repeats ids en_1"),
        (lambda p: p.assign(predicted_label=[1, 2, 0]), "outside {0, 1} for ids en_2=2"),
        (lambda p: p.assign(predicted_label=[1, None, 0]), "outside {0, 1}"),
    ],
)
def test_bad_submissions_are_refused_naming_ids(edit, message):
    gold, pred = frames([("en_1", "en", 1, 1), ("en_2", "en", 0, 0), ("en_3", "en", 0, 0)])
    with pytest.raises(MedsiftError, match=message.replace("{", r"\{").replace("}", r"\}")):
        score_ade(gold, edit(pred))


def test_error_names_first_few_ids_and_the_count():
    gold, pred = frames([(f"en_{i}", "en", 0, 0) for i in range(12)])
    with pytest.raises(MedsiftError) as info:
        score_ade(gold, pred.iloc[:2])
    assert "en_2, en_3, en_4, en_5, en_6 and 5 more (10 in all)" in str(info.value)


def _real_task1() -> pd.DataFrame:
    files = sorted((DATA / "task1").glob("*.csv"))
    if not files:
        pytest.skip("shared data not present")
    return {f.name: pd.read_csv(f, dtype=str, keep_default_na=False) for f in files}


def test_real_files_scored_against_themselves_are_perfect():
    for name, frame in _real_task1().items():
        frame = frame.assign(label=frame["label"].astype(float).astype(int))
        s = score_ade(frame, frame.rename(columns={"label": "predicted_label"}))
        assert all(v.f1 == 1.0 for v in s.per_language.values()), name
        if "cadec" not in name:
            assert s.f1 == 1.0 and s.macro_f1_two_class == 1.0


@pytest.mark.parametrize("k", [1, 37, 400])
def test_real_files_with_flipped_labels_match_sklearn_per_language(k):
    rng = np.random.default_rng(k)
    gold = pd.concat(_real_task1().values(), ignore_index=True)
    gold = gold.assign(label=gold["label"].astype(float).astype(int))
    gold = gold.drop_duplicates("id")  # ids are unique within a file, not across files
    flipped = gold["label"].to_numpy().copy()
    where = rng.choice(len(flipped), size=k, replace=False)
    flipped[where] = 1 - flipped[where]
    pred = pd.DataFrame({"id": gold["id"], "predicted_label": flipped}).sample(frac=1, random_state=k)
    s = score_ade(gold, pred)

    # independent computation: language from the id prefix and the cadec marker, sklearn on each group
    lang = gold["language"] + np.where(gold["id"].str.contains("cadec"), "_cadec", "")
    for code in lang.unique():
        mask = (lang == code).to_numpy()
        p, r, f, _ = precision_recall_fscore_support(
            gold["label"][mask], flipped[mask], average="binary", zero_division=0
        )
        assert s.per_language[code].f1 == pytest.approx(f)
        assert (s.per_language[code].precision, s.per_language[code].recall) == pytest.approx((p, r))
    keep = ~lang.str.endswith("_cadec").to_numpy()
    assert s.f1 == pytest.approx(f1_score(gold["label"][keep], flipped[keep]))
    assert s.macro_f1_two_class == pytest.approx(
        f1_score(gold["label"][keep], flipped[keep], average="macro")
    )
    assert s.f1 < 1.0
