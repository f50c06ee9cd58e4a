"""Markdown reports equal the metrics files; tagger reports score the --test file per type and highlight spans."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from medsift.cli import main
from medsift.decision import ThresholdPolicy
from medsift.report import build_report, load_run, write_report
from medsift.report.impacts import highlight, highlight_markdown, segments
from medsift.runs import RunManifest, write_json
from test_report import make_run, parse

ANCHOR = re.compile(r'^<a id="([^"]+)"></a>$')


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text.strip())


def _split_row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [_unescape(c) for c in cells]


def md_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Table id (from the anchor before it) -> rows as column -> shown text."""
    out: dict[str, list[dict[str, str]]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        found = ANCHOR.match(line)
        if not found:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("|"):
            if ANCHOR.match(lines[j]):
                break
            j += 1
        if j == len(lines) or not lines[j].startswith("|"):
            continue  # a figure anchor
        header = _split_row(lines[j])
        rows = []
        for row in lines[j + 2 :]:
            if not row.startswith("|"):
                break
            rows.append(dict(zip(header, _split_row(row), strict=True)))
        out[found.group(1)] = rows
    return out


def _num(text: str) -> float:
    return float(text.replace("★", "").replace("*", "").strip())


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory) -> Path:
    policy = ThresholdPolicy(
        mode="per_language", fallback=0.45, fallback_rule="mean", thresholds={"en": 0.4, "ja": 0.55}
    )
    return make_run(tmp_path_factory.mktemp("md"), "gamma_run", shift=0.05, policy=policy)


def test_markdown_numbers_equal_the_metrics_files(tuned_run, tmp_path):
    out = tmp_path / "report.md"
    main(["report", str(tuned_run), "-o", str(out), "-q"])
    tables = md_tables(out.read_text(encoding="utf-8"))
    policy = ThresholdPolicy.from_dict(json.loads((tuned_run / "thresholds.json").read_text()))
    for split in ("val", "calib"):
        probs = pd.read_csv(tuned_run / f"{split}_probabilities.csv")
        pred = (probs["p_ade"] >= policy.thresholds_for(probs["language"].to_numpy())).astype(int)
        rows = {r["language"]: r for r in tables[f"scores-gamma_run-{split}"]}
        for lang, frame in [("overall", probs), *probs.groupby("language")]:
            y, yhat = frame["label"], pred[frame.index]
            row = rows[lang]
            assert _num(row["f1"]) == pytest.approx(f1_score(y, yhat, zero_division=0), abs=5e-5)
            assert _num(row["precision"]) == pytest.approx(
                precision_score(y, yhat, zero_division=0), abs=5e-5
            )
            assert _num(row["recall"]) == pytest.approx(recall_score(y, yhat, zero_division=0), abs=5e-5)
            assert int(row["rows"]) == len(frame) and int(row["gold +"]) == y.sum()
        assert _num(rows["en"]["threshold"]) == 0.4 and rows["overall"]["threshold"] == "per group"
    seeds = {r["seed"]: r for r in tables["seeds-gamma_run"]}
    for seed in ("1", "2"):
        best = json.loads((tuned_run / f"seed-{seed}" / "metrics.json").read_text())["best"]
        for key in ("eval_f1", "eval_macro_f1", "eval_loss"):
            assert _num(seeds[seed][key]) == pytest.approx(best[key], abs=5e-5)
    (comparison,) = tables["comparison"]
    assert comparison["run"] == "gamma_run" and comparison["split"] == "calib"
    assert _num(comparison["f1"]) == pytest.approx(_num(rows["overall"]["f1"]), abs=5e-5)


def _tagger(tmp_path: Path, seeds: dict[int, tuple[float, float]]) -> Path:
    run = tmp_path / "tagger"
    for seed, (strict, relaxed) in seeds.items():
        dev = {
            "strict": {"overall": {"f1": strict}, "per_type": {"WD": {"f1": strict}}},
            "relaxed": {"overall": {"f1": relaxed}, "per_type": {"WD": {"f1": relaxed}}},
        }
        summary = {"strict_f1": strict, "relaxed_f1": relaxed}
        write_json(run / f"seed-{seed}" / "metrics.json", {"seed": seed, "summary": summary, "dev": dev})
    RunManifest(kind="impacts-tagger", task="impacts", seeds=list(seeds)).save(run)
    return run


@pytest.fixture
def tagger_test(tmp_path):
    """The bundled labelled Task 7 sample and a submission that drops the spans of its first tagged post."""
    from medsift.data import sample_path
    from medsift.io import read_impacts, write_impacts_submission

    gold_path = sample_path("impacts_sample_test.csv")
    gold = read_impacts(gold_path, labelled=True)
    first = next(i for i, tags in enumerate(gold["ner_tags"]) if any(t != "O" for t in tags))
    preds = [["O"] * len(t) if i == first else list(t) for i, t in enumerate(gold["ner_tags"])]
    sub = tmp_path / "sub.csv"
    write_impacts_submission(sub, gold["ID"].tolist(), preds)
    return gold_path, sub, gold, preds, first


def test_tagger_report_scores_the_test_file_per_type(tmp_path, tagger_test):
    from medsift.scoring import score_impacts

    gold_path, sub, gold, preds, _ = tagger_test
    run = _tagger(tmp_path, {1: (0.4, 0.6), 2: (0.5, 0.7)})
    out = tmp_path / "r.html"
    main(["report", str(run), "--test", str(gold_path), "--pred", str(sub), "-o", str(out), "-q"])
    html = parse(out)
    expected = score_impacts(gold, pd.DataFrame({"ID": gold["ID"], "predicted_ner_tags": preds})).to_dict()
    rows = {r["key"]: r["cells"] for r in html.tables["types-tagger-test"]}
    assert set(rows) == set(expected["strict"]["per_type"]) | {"overall"}
    for kind, cells in rows.items():
        for mode in ("strict", "relaxed"):
            block = expected[mode]["overall" if kind == "overall" else "per_type"]
            block = block if kind == "overall" else block[kind]
            for key in ("precision", "recall", "f1"):
                assert cells[f"{mode}_{key}"] == block[key]
    assert html.figures["fig-tagger-test-types"]["png"] and html.figures["fig-tagger-types"]["png"]
    # the comparison row of a tagger with a test file is its test score, not the dev mean
    (comparison,) = html.tables["comparison"]
    assert comparison["cells"]["strict_f1"] == expected["strict"]["overall"]["f1"]
    assert comparison["cells"]["relaxed_f1"] == expected["relaxed"]["overall"]["f1"]


def test_compare_scores_taggers_on_test_and_dev(tmp_path, tagger_test, capsys):
    from medsift.scoring import score_impacts

    gold_path, sub, gold, preds, _ = tagger_test
    run = _tagger(tmp_path, {1: (0.4, 0.6), 2: (0.5, 0.7)})
    main(["compare", str(run), "--json"])
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert (
        row["split"] == "dev"
        and row["strict_f1"] == pytest.approx(0.45)
        and row["relaxed_f1"] == pytest.approx(0.65)
    )
    main(["compare", str(run), "--test", str(gold_path), "--pred", str(sub), "--json"])
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    expected = score_impacts(gold, pd.DataFrame({"ID": gold["ID"], "predicted_ner_tags": preds}))
    assert row["split"] == "test"
    assert row["strict_f1"] == expected.strict.f1 and row["relaxed_f1"] == expected.relaxed.f1


def test_tagger_submission_that_misses_posts_is_one_error_naming_it(tmp_path, tagger_test, capsys):
    from medsift.io import write_impacts_submission

    gold_path, _, gold, preds, _ = tagger_test
    short = tmp_path / "short.csv"
    write_impacts_submission(short, gold["ID"].tolist()[1:], preds[1:])
    run = _tagger(tmp_path, {1: (0.4, 0.6)})
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(run), "--test", str(gold_path), "--pred", str(short)])
    assert exc.value.code == 2
    assert re.search(r"medsift: error: .*short\.csv.*missing IDs", capsys.readouterr().err)


def test_tagger_markdown_report_highlights_spans(tmp_path, tagger_test):
    gold_path, sub, gold, _, first = tagger_test
    run = _tagger(tmp_path, {1: (0.4, 0.6)})
    out = tmp_path / "impacts.md"
    main(["report", str(run), "--test", str(gold_path), "--pred", str(sub), "-o", str(out), "-q"])
    text = out.read_text(encoding="utf-8")
    tables = md_tables(text)
    assert {"types-tagger", "types-tagger-test", "examples-tagger"} <= set(tables)
    assert "`[[gold TYPE: …]]` = gold only" in text  # the notation is explained on the page
    examples = {r["id"]: r["post"] for r in tables["examples-tagger"]}
    missed = examples[str(gold["ID"].iloc[first])]
    tags, tokens = gold["ner_tags"].iloc[first], gold["tokens"].iloc[first]
    assert "[[gold " in missed and "[[both" not in missed and "[[pred" not in missed
    from medsift.scoring import spans_from_bio

    kind, start, end = spans_from_bio(list(tags))[0]
    assert f"[[gold {kind}: {' '.join(tokens[start:end])}]]" in missed
    agreed = [p for i, p in examples.items() if i != str(gold["ID"].iloc[first])]
    assert agreed and all("[[both " in p and "[[gold " not in p for p in agreed)
    assert not any("[[pred " in p for p in examples.values())


def test_highlight_segments_keep_adjacent_spans_apart():
    tokens = ["a", "b", "c", "d", "e|*"]
    gold = ["B-X", "I-X", "B-X", "O", "B-Y"]
    pred = ["B-X", "I-X", "I-X", "O", "B-Z"]
    assert [s.tokens for s in segments(tokens, gold, pred)] == [["a", "b"], ["c"], ["d"], ["e|*"]]
    md = highlight_markdown(tokens, gold, pred)
    assert md == r"[[both X: a b]] [[both X: c]] d [[gold Y / pred Z: e\|\*]]"
    page = highlight(tokens, gold, pred)
    assert page.count("<mark") == 3 and 'title="gold:Y pred:Z"' in page


def test_markdown_escapes_text_cells(tuned_run, tmp_path):
    text = write_report(build_report([load_run(tuned_run)]), tmp_path / "r.md")
    tables = md_tables(text.read_text(encoding="utf-8"))
    assert tables["comparison"][0]["run"] == "gamma_run"  # "_" escaped and read back
