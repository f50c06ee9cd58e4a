"""medsift report / compare: every section and figure is there and the numbers equal the run's files."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from medsift.cli import main
from medsift.decision import ThresholdPolicy
from medsift.report import best_per_column, build_report, compare_rows, load_run, write_report
from medsift.runs import RunManifest, write_json

FIGURES = ("bars", "pr", "f1-threshold", "reliability", "confusion")


class _Page(HTMLParser):
    """Collects figures (id -> has inline PNG + caption), tables (id -> rows of cells with their attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, dict] = {}
        self.tables: dict[str, list[dict]] = {}
        self.external: list[str] = []
        self._figure = self._table = None
        self._row: dict | None = None
        self._cell: dict | None = None
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("link", "script") or (tag == "img" and not a.get("src", "").startswith("data:")):
            self.external.append(tag)
        if tag == "figure":
            self._figure = a["id"]
            self.figures[self._figure] = {"png": False, "caption": ""}
        elif tag == "img" and self._figure:
            src = a.get("src", "")
            self.figures[self._figure]["png"] = (
                base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
            )
        elif tag == "figcaption":
            self._in_caption = True
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = {"key": a.get("data-key"), "cells": {}}
        elif tag == "td" and self._row is not None:
            self._cell = a

    def handle_endtag(self, tag):
        if tag == "figure":
            self._figure = None
        elif tag == "figcaption":
            self._in_caption = False
        elif tag == "tr" and self._row is not None:
            if self._row["cells"]:
                self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._in_caption and self._figure:
            self.figures[self._figure]["caption"] += data
        if self._cell is not None and self._row is not None:
            metric = self._cell.get("data-metric")
            if metric:
                self._row["cells"][metric] = float(self._cell["data-value"])
            self._row.setdefault("text", []).append(data)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _history(seed: int) -> list[dict]:
    return [
        {
            "eval_loss": 0.6 - 0.1 * e,
            "eval_f1": 0.5 + 0.1 * e,
            "eval_macro_f1": 0.4 + 0.1 * e,
            "epoch": float(e),
            "step": 4 * e,
            "train_loss": 0.7 - 0.15 * e + seed * 1e-4,
        }
        for e in (1, 2, 3)
    ]


def make_run(root: Path, name: str, *, shift: float = 0.0, policy: ThresholdPolicy | None = None) -> Path:
    """A finished ade-classifier run directory written by hand (the layout ``medsift.ade.train`` writes)."""
    rng = np.random.default_rng(3)
    run = root / name
    run.mkdir(parents=True)
    n = 40
    ids = [f"{'en' if i % 2 else 'ja'}_{i}" for i in range(n)]
    langs = ["en" if i % 2 else "ja" for i in range(n)]
    labels = (np.arange(n) % 3 == 0).astype(int)
    source = root / f"{name}-train.csv"
    pd.DataFrame(
        {
            "id": ids,
            "text": [f"post number {i} {'bad reaction' if y else 'fine'}" for i, y in enumerate(labels)],
            "label": labels,
            "language": langs,
        }
    ).to_csv(source, index=False)
    split = np.where(np.arange(n) < 20, "val", "calib")
    pd.DataFrame(
        {"uid": ids, "id": ids, "source": str(source), "language": langs, "label": labels, "split": split}
    ).to_csv(run / "splits.csv", index=False)
    p = np.clip(0.6 * labels + 0.2 + rng.normal(0, 0.15, n) + shift, 0.001, 0.999)
    for s in ("val", "calib"):
        rows = split == s
        frame = pd.DataFrame(
            {
                "id": np.array(ids)[rows],
                "language": np.array(langs)[rows],
                "p_ade": p[rows],
                "label": labels[rows],
                "p_ade__seed1": p[rows],
            }
        )
        frame.to_csv(run / f"{s}_probabilities.csv", index=False)
    for seed in (1, 2):
        history = _history(seed)
        write_json(
            run / f"seed-{seed}" / "metrics.json",
            {
                "seed": seed,
                "best_checkpoint": f"x/checkpoint-{8}",
                "best": {**history[1], "epoch": 3.0},
                "history": [*history, {**history[1], "epoch": 3.0, "step": 12}],
            },
        )
    policy = policy or ThresholdPolicy(mode="global", fallback=0.5, fallback_rule="global")
    write_json(run / "thresholds.json", policy.to_dict())
    (run / "config.yaml").write_text("task: ade\nmodel:\n  name: tiny\n", encoding="utf-8")
    RunManifest(kind="ade-classifier", task="ade", seeds=[1, 2]).save(run)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    tuned = ThresholdPolicy(
        mode="per_language",
        fallback=0.45,
        fallback_rule="mean",
        thresholds={"en": 0.4, "ja": 0.55},
        n_calibration=20,
    )
    return [make_run(root, "alpha"), make_run(root, "beta", shift=0.1, policy=tuned)]


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory) -> tuple[Path, _Page]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    main(["report", *map(str, runs), "-o", str(out), "-q"])
    return out, parse(out)


def test_every_section_and_figure_is_present_and_inline(page):
    _, html = page
    assert not html.external  # self-contained: no script, stylesheet or remote image
    for run in ("alpha", "beta"):
        for split in ("val", "calib"):
            for fig in FIGURES:
                figure = html.figures[f"fig-{run}-{split}-{fig}"]
                assert figure["png"] and figure["caption"]
            assert f"scores-{run}-{split}" in html.tables and f"errors-{run}-{split}" in html.tables
        assert html.figures[f"fig-{run}-training"]["png"]
        assert f"seeds-{run}" in html.tables
    assert [r["key"] for r in html.tables["comparison"]] == ["alpha", "beta"]


def test_score_tables_equal_the_probability_files_cut_at_the_run_thresholds(page, runs):
    _, html = page
    for run in runs:
        policy = ThresholdPolicy.from_dict(json.loads((run / "thresholds.json").read_text()))
        for split in ("val", "calib"):
            probs = pd.read_csv(run / f"{split}_probabilities.csv")
            pred = (probs["p_ade"] >= policy.thresholds_for(probs["language"].to_numpy())).astype(int)
            rows = {r["key"]: r["cells"] for r in html.tables[f"scores-{run.name}-{split}"]}
            for lang, frame in [("overall", probs), *probs.groupby("language")]:
                y, yhat = frame["label"], pred[frame.index]
                assert rows[lang]["f1"] == pytest.approx(f1_score(y, yhat, zero_division=0), abs=1e-12)
                assert rows[lang]["precision"] == pytest.approx(precision_score(y, yhat, zero_division=0))
                assert rows[lang]["recall"] == pytest.approx(recall_score(y, yhat, zero_division=0))
                assert rows[lang]["support"] == len(frame) and rows[lang]["positives"] == y.sum()
            assert rows["en"]["threshold"] == policy.threshold_for("en")


def _cadec_frame() -> tuple[pd.DataFrame, ThresholdPolicy]:
    """Native de and en posts plus de CADEC translations (ids with 'cadec', language 'de')."""
    rng = np.random.default_rng(11)
    parts = [("de", "de", 12, 0.2), ("cadec_de", "de", 10, 0.6), ("en", "en", 14, 0.3)]
    ids, langs, labels = [], [], []
    for prefix, lang, n, rate in parts:
        ids += [f"{prefix}_{i}" for i in range(n)]
        langs += [lang] * n
        labels += (rng.random(n) < rate).astype(int).tolist()
        labels[-1], labels[-2] = 1, 0  # both classes in every group
    y = np.array(labels)
    p = np.clip(0.5 * y + 0.25 + rng.normal(0, 0.2, len(y)), 0.001, 0.999)
    frame = pd.DataFrame({"id": ids, "language": langs, "label": y, "p_ade": p})
    policy = ThresholdPolicy(
        mode="per_language",
        fallback=0.5,
        fallback_rule="mean",
        thresholds={"de": 0.4, "de_cadec": 0.7, "en": 0.55},
        n_calibration=len(y),
    )
    return frame, policy


def test_curves_use_the_scoring_groups_of_the_tables(tmp_path):
    from medsift.report.ade import analyse_split, f1_curve, score_groups
    from medsift.report.load import RunData

    frame, policy = _cadec_frame()
    analysis = analyse_split(frame, policy, "calib")
    groups = {g.name: g for g in score_groups(analysis)}
    per_language = analysis.scores["per_language"]
    assert list(groups) == ["overall", "de", "de_cadec", "en"] and list(per_language) == [
        "de",
        "de_cadec",
        "en",
    ]
    # de holds only the 12 native posts, overall excludes the 10 CADEC rows (as the official scorer)
    assert len(groups["de"].y) == 12 and len(groups["overall"].y) == 26
    for name, group in groups.items():
        block = analysis.scores if name == "overall" else per_language[name]
        assert len(group.y) == block["support"] and group.y.sum() == block["positives"]
    # each group's marked threshold is the one its rows were cut at, and its F1 there is the table's F1
    assert {k: g.threshold for k, g in groups.items()} == {
        "overall": None,  # pools de (0.4) and en (0.55) rows
        "de": 0.4,
        "de_cadec": 0.7,
        "en": 0.55,
    }
    for name in per_language:
        g = groups[name]
        assert f1_curve(g.y, g.p, np.array([g.threshold]))[0] == pytest.approx(per_language[name]["f1"])
    c = analysis.confusion
    assert c["tp"] + c["fp"] == analysis.scores["predicted_positives"] and sum(c.values()) == 26

    run = RunData(
        "cadec",
        tmp_path,
        RunManifest(kind="ade-classifier", task="ade"),
        probabilities={"calib": frame},
        policy=policy,
    )
    html = parse(write_report(build_report([run]), tmp_path / "r.html"))
    rows = {r["key"]: r for r in html.tables["scores-cadec-calib"]}
    for name, group in groups.items():
        assert rows[name]["cells"]["support"] == len(group.y)
        if group.threshold is not None:
            assert rows[name]["cells"]["threshold"] == group.threshold
    assert "threshold" not in rows["overall"]["cells"] and "per group" in rows["overall"]["text"]
    assert all(html.figures[f"fig-cadec-calib-{f}"]["png"] for f in FIGURES)


def test_a_file_of_cadec_rows_only_still_draws(tmp_path):
    from medsift.report import figures
    from medsift.report.ade import analyse_split

    frame, policy = _cadec_frame()
    analysis = analyse_split(frame[frame["id"].str.contains("cadec")], policy, "test")
    assert analysis.scores["support"] == 0
    for draw in (figures.pr_curves, figures.f1_threshold_curves, figures.reliability_diagram):
        assert draw(analysis)[:4] == b"\x89PNG"


def test_seed_table_equals_metrics_json_and_best_epoch_is_the_kept_checkpoint(page, runs):
    _, html = page
    for run in runs:
        rows = {r["key"]: r["cells"] for r in html.tables[f"seeds-{run.name}"]}
        for seed in ("1", "2"):
            best = json.loads((run / f"seed-{seed}" / "metrics.json").read_text())["best"]
            for key in ("eval_f1", "eval_macro_f1", "eval_loss"):
                assert rows[seed][key] == best[key]
            assert rows[seed]["best_epoch"] == 2.0  # checkpoint-8 = step 8 = epoch 2, not the final 3


def test_worst_errors_are_the_most_confident_mistakes_with_their_text(page, runs):
    _, html = page
    run = runs[0]
    probs = pd.read_csv(run / "calib_probabilities.csv")
    fps = probs[(probs["p_ade"] >= 0.5) & (probs["label"] == 0)].sort_values("p_ade", ascending=False)
    table = html.tables["errors-alpha-calib"]
    shown_fp = [r for r in table if "false positive" in r["text"]]
    assert [r["key"] for r in shown_fp] == fps["id"].head(10).tolist()
    assert all(any("fine" in t for t in r["text"]) for r in shown_fp)  # the text of the source row


def test_errors_zero_puts_no_post_text_on_the_page(runs, tmp_path):
    out = tmp_path / "shareable.html"
    main(["report", *map(str, runs), "-o", str(out), "--errors", "0", "-q"])
    html = parse(out)
    assert not [name for name in html.tables if name.startswith("errors-")]
    assert "post number" not in out.read_text(encoding="utf-8")
    assert "scores-alpha-calib" in html.tables  # everything else stays


def _run_of_two_files_sharing_ids(root: Path, *, seed_copy: bool) -> Path:
    """An ade-classifier run trained on two files with the same ids (``a.csv`` and ``b.csv``): rows are told
    apart by ``uid`` (:func:`medsift.io.merge_uids`), as ``medsift.ade.train`` writes them."""
    from medsift.io import merge_uids

    ids = [f"en_{i}" for i in range(6)]
    frames, paths = [], []
    for name in ("a", "b"):
        path = root / f"{name}.csv"
        frame = pd.DataFrame(
            {"id": ids, "text": [f"{name} text {i}" for i in ids], "label": [0, 1] * 3, "language": "en"}
        )
        frame.to_csv(path, index=False)
        frames.append(frame.assign(source=str(path)))
        paths.append(path)
    rows = pd.concat(frames, ignore_index=True).assign(uid=merge_uids(frames, paths))
    assert rows["id"].duplicated().any() and not rows["uid"].duplicated().any()
    run = root / "run"
    (run / "seed-1").mkdir(parents=True)
    rows[["uid", "id", "source", "language", "label"]].assign(split="val").to_csv(
        run / "splits.csv", index=False
    )
    probs = rows.assign(p_ade=np.where(rows["label"] == 1, 0.1, 0.9))  # every row a confident mistake
    columns = ["id", "language", "p_ade", "label", "uid"]
    probs[columns].to_csv(run / "val_probabilities.csv", index=False)  # the run file: uid, no source
    if seed_copy:  # sources from the per-seed copy (splits.csv without them)
        probs[[*columns, "source"]].to_csv(run / "seed-1" / "val_probabilities.csv", index=False)
        splits = pd.read_csv(run / "splits.csv").drop(columns="source")
        splits.to_csv(run / "splits.csv", index=False)
    write_json(run / "seed-1" / "metrics.json", {"seed": 1, "best": {}, "history": []})
    RunManifest(kind="ade-classifier", task="ade", seeds=[1]).save(run)
    return run


@pytest.mark.parametrize("seed_copy", [False, True])
def test_rows_sharing_an_id_across_merged_files_each_get_their_own_text(tmp_path, seed_copy):
    from medsift.report.ade import analyse_split, policy_of, worst_errors

    run_dir = _run_of_two_files_sharing_ids(tmp_path, seed_copy=seed_copy)
    run = load_run(run_dir)
    texts = run.texts["val"]
    assert texts["a:en_0"] == "a text en_0" and texts["b:en_0"] == "b text en_0"
    assert len(texts) == 12
    errors = worst_errors(analyse_split(run.probabilities["val"], policy_of(run), "val"), texts, n=20)
    assert len(errors) == 12
    for row_id, group in errors.groupby("id"):
        assert sorted(group["text"]) == [f"a text {row_id}", f"b text {row_id}"]
    # the whole report renders: the 12 rows are scored as 12 (the scorer itself refuses repeated ids)
    out = tmp_path / "r.html"
    main(["report", str(run_dir), "-o", str(out), "-q"])
    rows = {r["key"]: r["cells"] for r in parse(out).tables["scores-run-val"]}
    assert (
        rows["overall"]["support"] == 12
        and rows["overall"]["positives"] == 6
        and rows["overall"]["f1"] == 0.0
    )
    assert len(parse(out).tables["errors-run-val"]) == 12


def test_comparison_marks_the_best_run_per_column(runs):
    loaded = [load_run(r) for r in runs]
    columns, rows = compare_rows(loaded, "calib")
    assert {"f1", "macro_f1", "f1_en", "f1_ja", "best_epoch", "seeds"} <= set(columns)
    best = best_per_column(columns, rows)
    for column, winners in best.items():
        top = max(r[column] for r in rows)
        assert all(rows[i][column] == top for i in winners)
    assert rows[0]["seeds"] == "1,2"


def test_comparison_table_values_equal_the_runs_scores(page, runs):
    _, html = page
    rows = {r["key"]: r["cells"] for r in html.tables["comparison"]}
    for run in runs:
        policy = ThresholdPolicy.from_dict(json.loads((run / "thresholds.json").read_text()))
        probs = pd.read_csv(run / "calib_probabilities.csv")  # the default split: calib (no test file)
        pred = (probs["p_ade"] >= policy.thresholds_for(probs["language"].to_numpy())).astype(int)
        cells = rows[run.name]
        assert cells["f1"] == pytest.approx(f1_score(probs["label"], pred, zero_division=0), abs=1e-12)
        assert cells["macro_f1"] == pytest.approx(
            f1_score(probs["label"], pred, average="macro", zero_division=0), abs=1e-12
        )
        for lang, frame in probs.groupby("language"):
            assert cells[f"f1_{lang}"] == pytest.approx(
                f1_score(frame["label"], pred[frame.index], zero_division=0), abs=1e-12
            )


def test_compare_cli_json_and_table(runs, capsys):
    main(["compare", *map(str, runs), "--split", "val", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in payload["rows"]] == ["alpha", "beta"]
    assert payload["rows"][0]["split"] == "val"
    main(["compare", *map(str, runs)])
    out = capsys.readouterr().out
    assert "★" in out and "alpha" in out and "f1_en" in out


def test_markdown_has_the_same_tables_and_writes_figures_beside(runs, tmp_path):
    doc = build_report([load_run(runs[0])])
    out = write_report(doc, tmp_path / "report.md")
    text = out.read_text(encoding="utf-8")
    pngs = sorted((tmp_path / "report_files").glob("*.png"))
    assert len(pngs) == 2 * len(FIGURES) + 1
    for png in pngs:
        assert f"report_files/{png.name}" in text
    assert "| language | rows | gold + |" in text


def test_test_split_from_a_probability_file(runs, tmp_path, capsys):
    gold = tmp_path / "test.csv"
    pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "text": ["x y", "z", "bad", "ok"],
            "label": [1, 0, 1, 0],
            "language": ["fa", "fa", "en", "en"],
        }
    ).to_csv(gold, index=False)
    probs = tmp_path / "probs.csv"
    pd.DataFrame(
        {"id": ["d", "c", "b", "a"], "language": ["en", "en", "fa", "fa"], "p_ade": [0.7, 0.9, 0.2, 0.6]}
    ).to_csv(probs, index=False)
    main(["compare", str(runs[0]), "--test", str(gold), "--pred", str(probs), "--json"])
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert row["split"] == "test" and row["f1_fa"] == 1.0 and row["f1_en"] == pytest.approx(2 / 3)


def test_unfinished_run_is_one_error_line(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path / "half"), "-o", str(tmp_path / "r.html"), "-q"])
    assert exc.value.code == 2
    assert re.search(r"medsift: error: .*half.*not a finished medsift run", capsys.readouterr().err)


def test_impacts_tagger_sections(tmp_path):
    run = tmp_path / "tagger"
    dev = {
        "strict": {"overall": {"f1": 0.5}, "per_type": {"CLINICAL": {"f1": 0.6}, "SOCIAL": {"f1": 0.3}}},
        "relaxed": {"overall": {"f1": 0.7}, "per_type": {"CLINICAL": {"f1": 0.8}, "SOCIAL": {"f1": 0.55}}},
    }
    write_json(
        run / "seed-5" / "metrics.json",
        {"seed": 5, "summary": {"strict_f1": 0.5, "relaxed_f1": 0.7}, "dev": dev, "history": []},
    )
    RunManifest(kind="impacts-tagger", task="impacts", seeds=[5]).save(run)
    out = write_report(build_report([load_run(run)]), tmp_path / "r.html")
    html = parse(out)
    rows = {r["key"]: r["cells"] for r in html.tables["types-tagger"]}
    assert rows["5:CLINICAL"] == {"strict_f1": 0.6, "relaxed_f1": 0.8}
    assert rows["5:overall"] == {"strict_f1": 0.5, "relaxed_f1": 0.7}
    assert html.figures["fig-tagger-types"]["png"]


@pytest.mark.slow
def test_report_of_a_really_trained_tiny_run(tiny_bert, tmp_path):
    from medsift.ade.train import train
    from test_ade import make_ade_csv, tiny_config

    cfg = tiny_config(
        tiny_bert,
        make_ade_csv(tmp_path / "train.csv"),
        tmp_path / "run",
        training={"num_train_epochs": 2},
        seeds=[3, 4],
    )
    run = train(cfg, quiet=True)
    out = write_report(build_report([load_run(run)]), tmp_path / "r.html")
    html = parse(out)
    for seed in (3, 4):
        best = json.loads((run / f"seed-{seed}" / "metrics.json").read_text())["best"]
        assert {r["key"]: r["cells"] for r in html.tables["seeds-run"]}[str(seed)]["eval_f1"] == best[
            "eval_f1"
        ]
    errors = html.tables["errors-run-calib"]
    assert all(len(r["text"]) == 6 for r in errors)  # every error row found its post text
    assert {f"fig-run-calib-{f}" for f in FIGURES} <= set(html.figures)


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
    reason="chromium is not installed (make browser)",
)
def test_report_renders_in_headless_chromium(page, tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "screenshot_report.py"
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [sys.executable, str(script), str(page[0]), str(shot), "--height", "1200"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size == (1400, 1200)
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # not a blank page


def test_impacts_examples_highlight_gold_and_predicted_spans(tmp_path):
    from medsift.data import sample_path
    from medsift.io import read_impacts, write_impacts_submission

    gold_path = sample_path("impacts_sample_test.csv")
    gold = read_impacts(gold_path, labelled=True)
    # The prediction drops every span of the first post that has one and agrees on the rest.
    first = next(i for i, tags in enumerate(gold["ner_tags"]) if any(t != "O" for t in tags))
    preds = [["O"] * len(t) if i == first else list(t) for i, t in enumerate(gold["ner_tags"])]
    sub = tmp_path / "sub.csv"
    write_impacts_submission(sub, gold["ID"].tolist(), preds)
    run = tmp_path / "tagger"
    RunManifest(kind="impacts-tagger", task="impacts", seeds=[1]).save(run)
    out = tmp_path / "r.html"
    main(["report", str(run), "--test", str(gold_path), "--pred", str(sub), "-o", str(out), "-q"])
    rows = {r["key"]: r for r in parse(out).tables["examples-tagger"]}
    worst = rows[str(gold["ID"].iloc[first])]
    assert worst["cells"]["tags_differing"] == sum(t != "O" for t in gold["ner_tags"].iloc[first])
    page = out.read_text(encoding="utf-8")
    assert '<mark class="gold"' in page and '<mark class="both"' in page and '<mark class="pred"' not in page
    main(
        [
            "report",
            str(run),
            "--test",
            str(gold_path),
            "--pred",
            str(sub),
            "-o",
            str(out),
            "--errors",
            "0",
            "-q",
        ]
    )
    shareable = parse(out)
    assert "examples-tagger" not in shareable.tables and "<mark" not in out.read_text(encoding="utf-8")
    assert any(name.startswith("types-") or "test" in name for name in shareable.tables)


def test_ensemble_run_is_reported_with_the_rows_that_tuned_it(runs, tmp_path):
    ens = tmp_path / "ens"
    main(["ensemble", *map(str, runs), "--method", "soft", "--thresholds", "per_language", "-o", str(ens)])
    out = tmp_path / "r.html"
    main(["report", str(ens), "-o", str(out), "-q"])
    html = parse(out)
    assert {f"fig-ens-calib-{f}" for f in FIGURES} <= set(html.figures)
    page = out.read_text(encoding="utf-8")
    assert "ensemble (soft): member weights from val rows" in page
    errors = html.tables["errors-ens-calib"]
    assert errors and all(
        any(t.startswith("post number") for t in r["text"]) for r in errors
    )  # texts via members
