"""A killed bulk ``predict`` continues from its last finished chunk: byte-identical output, every post scored once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_ade import make_ade_csv, tiny_config

MEDSIFT = Path(sys.executable).parent / "medsift"


@pytest.fixture(scope="module")
def ade_run(tiny_bert: Path, tmp_path_factory) -> Path:
    from medsift.ade.train import train

    tmp = tmp_path_factory.mktemp("resume_predict")
    cfg = tiny_config(
        tiny_bert, make_ade_csv(tmp / "train.csv"), tmp / "run", training={"num_train_epochs": 1}
    )
    return train(cfg, quiet=True)


class CountingClassifier:
    """The run's classifier, counting the posts it scores; ``stop_after`` chunks, it is 'killed' (Ctrl-C)."""

    def __init__(self, run: Path, stop_after: int | None = None):
        from medsift.ade import AdeClassifier

        self.inner, self.stop_after, self.calls, self.posts = (
            AdeClassifier.from_run(run, device="cpu"),
            stop_after,
            0,
            0,
        )

    def predict(self, texts, languages, **kwargs):
        if self.stop_after is not None and self.calls == self.stop_after:
            raise KeyboardInterrupt  # like a kill: no clean-up of the partial files
        self.calls += 1
        self.posts += len(texts)
        return self.inner.predict(texts, languages, **kwargs)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_an_interrupted_prediction_resumes_byte_identical_scoring_each_post_once(ade_run, tmp_path, suffix):
    from medsift.engine.streaming import predict_stream

    posts = make_ade_csv(tmp_path / "posts.csv", n=37, seed=3)
    ref, ref_p = tmp_path / f"ref{suffix}", tmp_path / "ref_p.csv"
    predict_stream(
        ade_run,
        posts,
        ref,
        chunk_rows=5,
        probabilities=ref_p,
        quiet=True,
        classifier=CountingClassifier(ade_run),
    )
    out, out_p = tmp_path / f"out{suffix}", tmp_path / "out_p.csv"
    killed = CountingClassifier(ade_run, stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        predict_stream(ade_run, posts, out, chunk_rows=5, probabilities=out_p, quiet=True, classifier=killed)
    assert not out.exists() and (tmp_path / f".out{suffix}.partial").exists()
    state = json.loads((tmp_path / f".out{suffix}.resume.json").read_text())
    assert state["chunks"] == 3
    resumed = CountingClassifier(ade_run)
    result = predict_stream(
        ade_run, posts, out, chunk_rows=5, probabilities=out_p, quiet=True, classifier=resumed
    )
    assert out.read_bytes() == ref.read_bytes() and out_p.read_bytes() == ref_p.read_bytes()
    assert killed.posts + resumed.posts == 37 and result["resumed_rows"] == 15 and result["rows"] == 37
    assert not list(tmp_path.glob(".out*"))  # no partial or state file left


def test_a_changed_input_or_option_starts_over(ade_run, tmp_path):
    from medsift.engine.streaming import predict_stream

    posts = make_ade_csv(tmp_path / "posts.csv", n=20, seed=4)
    out = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt):
        predict_stream(
            ade_run, posts, out, chunk_rows=5, quiet=True, classifier=CountingClassifier(ade_run, 2)
        )
    make_ade_csv(posts, n=21, seed=4)  # the input changed: its partial output is not reused
    fresh = CountingClassifier(ade_run)
    result = predict_stream(ade_run, posts, out, chunk_rows=5, quiet=True, classifier=fresh)
    assert fresh.posts == 21 and "resumed_rows" not in result


def test_bad_input_in_a_later_chunk_leaves_nothing_to_resume(ade_run, tmp_path):
    from medsift.engine.streaming import predict_stream
    from medsift.errors import MedsiftError

    posts = tmp_path / "posts.csv"
    posts.write_text(
        "id,text\n" + "".join(f"{i},post {i}\n" for i in range(12)) + "3,again\n", encoding="utf-8"
    )
    with pytest.raises(MedsiftError, match="duplicate id"):
        predict_stream(
            ade_run,
            posts,
            tmp_path / "out.csv",
            chunk_rows=5,
            quiet=True,
            classifier=CountingClassifier(ade_run),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posts.csv"]


@pytest.mark.slow  # 20,000 posts through the real executable, killed with SIGKILL and run again (~40 s)
def test_predict_killed_half_way_through_20000_posts_resumes_byte_identical(ade_run, tmp_path):
    import random

    rng = random.Random(1)
    words = [
        "I",
        "took",
        "the",
        "pill",
        "and",
        "got",
        "a",
        "headache",
        "rash",
        "fine",
        "today",
        "sleep",
        "nausea",
        "pain",
    ]
    posts = tmp_path / "posts.csv"
    with open(posts, "w", encoding="utf-8") as fh:
        fh.write("id,text,language\n")
        for i in range(20000):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 20)))
            fh.write(f"p{i},{text},{rng.choice(['en', 'ja', 'fa'])}\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

    def predict(out: Path) -> subprocess.Popen:
        args = [MEDSIFT, "predict", ade_run, posts, "-o", out, "--probabilities", out.with_suffix(".p.csv")]
        return subprocess.Popen(
            list(map(str, args)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    reference = predict(tmp_path / "ref.csv")
    assert reference.wait(timeout=300) == 0
    out = tmp_path / "out.csv"
    killed = predict(out)
    state = tmp_path / ".out.csv.resume.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if state.exists() and json.loads(state.read_text())["chunks"] >= 2:  # 8,192 of 20,000 posts scored
            break
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    done = json.loads(state.read_text())["chunks"] * 4096
    assert 0 < done < 20000 and not out.exists()
    resumed = predict(out)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resumed a killed run: {done} rows it had scored were kept, not scored again" in err
    assert out.read_bytes() == (tmp_path / "ref.csv").read_bytes()
    assert out.with_suffix(".p.csv").read_bytes() == (tmp_path / "ref.p.csv").read_bytes()


def test_count_rows_gives_the_progress_bar_its_total(tmp_path):
    from medsift.io.chunks import count_rows

    csv_file = tmp_path / "p.csv"
    csv_file.write_text('id,text\n1,"two\nlines"\n2,b\n\n3,c\n', encoding="utf-8")
    lines = tmp_path / "p.jsonl"
    lines.write_text('{"text": "a"}\n\n{"text": "b"}\n', encoding="utf-8")
    assert count_rows(csv_file) == 3 and count_rows(lines) == 2
    assert count_rows(tmp_path / "missing.csv") is None  # the reader names the problem, not the bar
