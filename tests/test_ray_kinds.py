"""``medsift predict --engine ray`` for every run kind, on a real local Ray instance: each shard's output is the
file ``medsift predict`` writes for that shard alone (an ADE ensemble, an impact tagger; classifier runs are
covered by ``test_ray.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsift.cli import main
from test_ade import make_ade_csv, tiny_config
from test_reliability_cli_impacts import _impacts_config

pytestmark = pytest.mark.slow  # starts Ray (about 30 s on 2 cores)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _main(args) -> None:
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        assert exc.code in (0, None), exc


def _compare_with_local(run: Path, shards: Path, out: Path, tmp_path: Path, names: list[str]) -> None:
    _main(["predict", run, shards, "-o", out, "--engine", "ray", "-q"])
    for name in names:
        local = tmp_path / f"local-{Path(name).stem}.csv"
        _main(["predict", run, shards / name, "-o", local, "-q"])
        assert (out / f"{Path(name).stem}.csv").read_bytes() == local.read_bytes(), name


def test_an_ade_ensemble_on_ray_equals_local_predict(tiny_bert, local_ray, tmp_path):
    from medsift.ade.train import train

    runs = []
    for seed in (1, 2):
        cfg = tiny_config(
            tiny_bert, make_ade_csv(tmp_path / f"train{seed}.csv"), tmp_path / f"run{seed}", seeds=[seed]
        )
        runs.append(train(cfg, quiet=True))
    ensemble = tmp_path / "ens"
    _main(["ensemble", *runs, "-o", ensemble])
    shards = tmp_path / "shards"
    shards.mkdir()
    make_ade_csv(shards / "a.csv", n=9, seed=11)
    make_ade_csv(shards / "b.csv", n=7, seed=12)
    _compare_with_local(ensemble, shards, tmp_path / "out", tmp_path, ["a.csv", "b.csv"])
    assert (tmp_path / "out" / "a.probabilities.csv").exists()


def test_an_impact_tagger_on_ray_equals_local_predict(tiny_bert, local_ray, tmp_path):
    from test_impacts_model import POSTS, _write_csv

    _main(
        ["train", _impacts_config(tmp_path, tiny_bert, [_write_csv(tmp_path / "train.csv", POSTS * 2)]), "-q"]
    )
    shards = tmp_path / "shards"
    shards.mkdir()
    _write_csv(shards / "a.csv", POSTS, labelled=False)
    (shards / "b.txt").write_text("I overdosed last night\nlost my job again\n", encoding="utf-8")
    _compare_with_local(tmp_path / "run", shards, tmp_path / "out", tmp_path, ["a.csv", "b.txt"])
