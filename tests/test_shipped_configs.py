"""Every shipped config loads through the schema of its task/method, and its data paths make sense."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsift.config import load_config, read_yaml, shipped_configs
from medsift.errors import MedsiftError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(shipped_configs().items())
PAPER_ADE = (
    "ade-xlmr-large-focal-3seeds",
    "ade-xlmr-large-focal-1seed",
    "ade-xlmr-large-ce",
    "ade-xlmr-large-focal-no-oversampling",
    "ade-infoxlm-large",
    "ade-xlmr-large-dnt",
)


def _load(name: str):
    try:
        return load_config(name)
    except MedsiftError as exc:
        if "unknown task/method" in str(exc):
            raw = read_yaml(shipped_configs()[name])
            pytest.skip(
                f"schema task={raw.get('task')} method={raw.get('method', 'encoder')} not registered yet"
            )
        raise


@pytest.mark.parametrize("name", [n for n, _ in SHIPPED])
def test_every_shipped_config_validates(name: str):
    config = _load(name)
    assert config.task in ("ade", "impacts")
    assert config.output_dir.startswith("runs/")


@pytest.mark.parametrize("name", [n for n, _ in SHIPPED])
def test_bundled_and_shared_data_paths_exist(name: str):
    from medsift.config import resolve_data_path

    config = _load(name)
    files = list(config.data.train) + [f for f in (getattr(config.data, "dev", None),) if f]
    for item in files:
        if item.startswith("sample:"):
            assert resolve_data_path(item).exists(), item
        elif item.startswith("../shared/data/"):
            if not (ROOT.parent / "shared" / "data").is_dir():
                pytest.skip("shared data folder not present")
            assert (ROOT / item).exists(), f"{name}: {item} (paths are relative to the repo root)"


def test_paper_ade_configs_follow_the_papers():
    configs = {name: load_config(name) for name in PAPER_ADE}
    main = configs["ade-xlmr-large-focal-3seeds"]
    assert main.model.name == "xlm-roberta-large" and main.model.max_length == 256
    assert (main.loss.name, main.loss.focal_alpha, main.loss.focal_gamma) == ("focal", 0.75, 2.0)
    assert main.data.oversample_positives == 3.0 and main.seeds == [42, 123, 456]
    t = main.training
    assert (t.learning_rate, t.num_train_epochs, t.lr_scheduler_type, t.warmup_steps) == (
        1e-5,
        5,
        "cosine",
        0.1,
    )
    assert t.per_device_train_batch_size * t.gradient_accumulation_steps == 32
    assert configs["ade-xlmr-large-ce"].loss.name == "ce" and configs["ade-xlmr-large-ce"].seeds == [42]
    for name in ("ade-infoxlm-large", "ade-xlmr-large-dnt"):
        t = configs[name].training
        assert (t.learning_rate, t.per_device_train_batch_size, t.gradient_accumulation_steps) == (
            5e-5,
            16,
            4,
        )
        assert t.num_train_epochs == 5
    # Ablations differ from the main recipe only where they say they do.
    for name, changed in (
        ("ade-xlmr-large-ce", {"loss", "seeds", "output_dir"}),
        ("ade-xlmr-large-focal-1seed", {"seeds", "output_dir"}),
        ("ade-xlmr-large-focal-no-oversampling", {"data", "seeds", "output_dir"}),
    ):
        a, b = main.model_dump(), configs[name].model_dump()
        assert {k for k in a if a[k] != b[k]} == changed, name
    # Every output folder is distinct, so runs never collide.
    dirs = [load_config(n).output_dir for n, _ in SHIPPED if _loadable(n)]
    assert len(dirs) == len(set(dirs))


def _loadable(name: str) -> bool:
    try:
        load_config(name)
    except MedsiftError:
        return False
    return True
