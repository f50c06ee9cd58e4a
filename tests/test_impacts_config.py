"""The impact tagger's config schema and the shipped impacts configs."""

from __future__ import annotations

import pytest

from medsift.config import load_config, parse_config, shipped_configs
from medsift.errors import ConfigError
from medsift.impacts.config import ImpactsConfig

SHIPPED = ["impacts-deberta-v3-large-bio", "impacts-deberta-v3-large-io", "impacts-minilm-cpu"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_impacts_configs_load(name):
    assert name in shipped_configs()
    config = load_config(name)
    assert isinstance(config, ImpactsConfig)
    assert config.task == "impacts" and config.scheme in ("bio", "io")


def test_paper_settings():
    for scheme in ("bio", "io"):
        c = load_config(f"impacts-deberta-v3-large-{scheme}")
        assert (
            c.scheme == scheme and c.model.name == "microsoft/deberta-v3-large" and c.model.max_length == 256
        )
        t = c.training
        assert (t.learning_rate, t.per_device_train_batch_size, t.gradient_accumulation_steps) == (5e-5, 8, 2)
        assert (t.weight_decay, t.warmup_steps, t.num_train_epochs, t.label_smoothing_factor) == (
            0.01,
            0.1,
            5,
            0.1,
        )
    cpu = load_config("impacts-minilm-cpu")
    assert cpu.model.name == "offline:minilm" and cpu.model.max_length == 128 and cpu.training.use_cpu


def test_schema_rejects_typos_and_bad_values():
    base = {"task": "impacts", "model": {"name": "x"}, "data": {"train": ["a.csv"]}}
    assert parse_config(base).model.word_strategy == "first"
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config({**base, "model": {"name": "x", "strid": 3}})
    with pytest.raises(ConfigError, match="scheme"):
        parse_config({**base, "scheme": "bioes"})
    with pytest.raises(ConfigError, match="stride"):
        parse_config({**base, "model": {"name": "x", "max_length": 32, "stride": 31}})
    with pytest.raises(ConfigError, match="seeds"):
        parse_config({**base, "seeds": [1, 1]})
    assert load_config("impacts-minilm-cpu", ["scheme=io", "model.crf=true"]).model.crf
