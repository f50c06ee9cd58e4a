"""Ray Data bulk scoring of a folder of shards equals local scoring of each shard."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsift.errors import MedsiftError
from test_ade import make_ade_csv, tiny_config

pytestmark = pytest.mark.slow  # starting a local Ray instance takes >10 s


@pytest.fixture(scope="module")
def ade_run(tiny_bert: Path, tmp_path_factory) -> Path:
    from medsift.ade.train import train

    tmp = tmp_path_factory.mktemp("ray")
    config = tiny_config(
        tiny_bert, make_ade_csv(tmp / "train.csv"), tmp / "run", training={"num_train_epochs": 2}
    )
    return train(config, quiet=True)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_scoring_of_two_shards_equals_local_scoring(ade_run: Path, local_ray, tmp_path: Path):
    from medsift.engine.ray_engine import predict_shards_ray
    from medsift.engine.streaming import predict_stream

    shards = tmp_path / "shards"
    shards.mkdir()
    make_ade_csv(shards / "part-0.csv", n=9, seed=1)
    make_ade_csv(shards / "part-1.csv", n=7, seed=2)
    result = predict_shards_ray(ade_run, shards, tmp_path / "out", probabilities=True)
    assert result["shards"] == 2 and result["rows"] == 16
    for name in ("part-0", "part-1"):
        predict_stream(
            ade_run,
            shards / f"{name}.csv",
            tmp_path / f"{name}.local.csv",
            probabilities=tmp_path / f"{name}.local.probs.csv",
            quiet=True,
        )
        assert (tmp_path / "out" / f"{name}.csv").read_text() == (tmp_path / f"{name}.local.csv").read_text()
        ray_probs = (tmp_path / "out" / f"{name}.probabilities.csv").read_text()
        assert ray_probs == (tmp_path / f"{name}.local.probs.csv").read_text()


def test_a_bad_shard_is_a_one_line_error(ade_run: Path, local_ray, tmp_path: Path):
    from medsift.engine.ray_engine import predict_shards_ray

    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "bad.csv").write_text("id,text\n1,a\n1,b\n")
    with pytest.raises(MedsiftError, match="duplicate id"):
        predict_shards_ray(ade_run, shards, tmp_path / "out")
    with pytest.raises(MedsiftError, match="folder of shard files"):
        predict_shards_ray(ade_run, shards / "bad.csv", tmp_path / "out")
