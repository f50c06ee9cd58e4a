"""ADE training options: config validation, class weights, selection metrics, step evaluation, long posts,
what a non-main process of a multi-GPU launch writes (nothing) and how a process knows it is the main one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from medsift.ade.loss import classification_loss
from medsift.config import parse_config
from medsift.errors import ConfigError
from test_ade import make_ade_csv, tiny_config

LOGITS = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
LABELS = torch.tensor([0, 1, 1])


def _p_true() -> list[float]:
    """Softmax probability of each row's gold class, by hand: 1 / (1 + e^-(z_gold - z_other))."""
    return [1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(-1.0)), 0.5]


def _loss(name: str, **kw) -> float:
    args = {"alpha": None, "gamma": 0.0, "class_weights": None, **kw}
    return float(classification_loss(LOGITS, LABELS, name=name, **args))


def test_class_weights_give_the_weighted_mean_of_the_row_losses():
    weights = [1.0, 3.0]  # w_neg, w_pos
    w = [1.0, 3.0, 3.0]  # the weight of each row's gold class
    nll = [-math.log(p) for p in _p_true()]
    weighted_ce = sum(wi * li for wi, li in zip(w, nll, strict=True)) / sum(w)
    assert _loss("ce", class_weights=weights) == pytest.approx(weighted_ce, rel=1e-6)
    assert _loss("focal", class_weights=weights) == pytest.approx(weighted_ce, rel=1e-6)  # gamma 0, alpha off
    # focal, gamma 2, alpha 0.75: row loss alpha_t (1 - p_t)^2 (-log p_t), alpha_t = 0.25 for the negative row
    alpha_t = [0.25, 0.75, 0.75]
    focal_rows = [a * (1 - p) ** 2 * -math.log(p) for a, p in zip(alpha_t, _p_true(), strict=True)]
    expected = sum(wi * li for wi, li in zip(w, focal_rows, strict=True)) / sum(w)
    assert _loss("focal", alpha=0.75, gamma=2.0, class_weights=weights) == pytest.approx(expected, rel=1e-6)
    assert _loss("focal", alpha=0.75, gamma=2.0) == pytest.approx(sum(focal_rows) / 3, rel=1e-6)


def test_label_smoothing_reaches_the_cross_entropy_and_is_refused_with_focal():
    eps = 0.2
    smoothed = []
    for row, label in zip(LOGITS.tolist(), LABELS.tolist(), strict=True):
        log_p = torch.log_softmax(torch.tensor(row), dim=0).tolist()
        smoothed.append(-((1 - eps) * log_p[label] + eps / 2 * sum(log_p)))
    got = float(
        classification_loss(
            LOGITS, LABELS, name="ce", alpha=None, gamma=0, class_weights=None, label_smoothing=eps
        )
    )
    assert got == pytest.approx(sum(smoothed) / 3, rel=1e-6)
    raw = {"task": "ade", "data": {"train": ["x.csv"]}, "loss": {"name": "focal"}}
    with pytest.raises(ConfigError, match=r"label_smoothing_factor applies to loss\.name: ce only"):
        parse_config({**raw, "training": {"label_smoothing_factor": 0.1}})


def test_step_evaluation_needs_eval_steps():
    raw = {"task": "ade", "data": {"train": ["x.csv"]}, "training": {"eval_strategy": "steps"}}
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, source="cfg.yaml")
    message = exc.value.render()
    assert message.startswith("cfg.yaml: training: eval_strategy: steps needs eval_steps")
    assert "Value error" not in message
    config = parse_config({**raw, "training": {"eval_strategy": "steps", "eval_steps": 50}})
    assert config.training.eval_steps == 50
    with pytest.raises(ConfigError, match="eval_steps"):
        parse_config({**raw, "training": {"eval_strategy": "steps", "eval_steps": 0}})


@pytest.mark.parametrize(
    ("metric", "name", "greater"),
    [("f1", "eval_f1", True), ("macro_f1", "eval_macro_f1", True), ("neg_loss", "eval_loss", False)],
)
def test_selection_metric_sets_the_best_checkpoint_rule(metric, name, greater, tmp_path: Path):
    from medsift.ade.train import training_arguments

    config = tiny_config(tmp_path, tmp_path / "t.csv", tmp_path / "run", selection_metric=metric)
    args = training_arguments(config, tmp_path / "seed-1", 1)
    assert args.metric_for_best_model == name and args.greater_is_better is greater
    assert args.load_best_model_at_end and args.save_strategy == args.eval_strategy == "epoch"


class _IdMeanClassifier(torch.nn.Module):
    """A stand-in classifier whose positive logit is the mean input id of the unpadded tokens / 100, so that
    every window of a post gets a clearly different, hand-computable probability."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.01))

    def forward(self, input_ids, attention_mask, **_):
        mask = attention_mask.float()
        mean = (input_ids.float() * mask).sum(-1) / mask.sum(-1)
        return type("Out", (), {"logits": torch.stack([torch.zeros_like(mean), mean * self.scale], -1)})


def test_window_averaging_gives_a_long_post_the_mean_of_its_windows(wordpiece_tokenizer: Path):
    from transformers import AutoTokenizer

    from medsift.ade.encode import encode_posts
    from medsift.ade.inference import positive_probabilities

    tok = AutoTokenizer.from_pretrained(wordpiece_tokenizer)
    long_post = " ".join(["after the pills I felt dizzy and sick, then the weather was nice"] * 4)
    encoded = encode_posts(tok, ["short post", long_post], max_length=16, policy="windows", stride=4)
    windows = [f["input_ids"] for f in encoded.features if f["post"] == 1]
    assert len(windows) >= 3 and encoded.too_long() == [False, True]
    each = [1 / (1 + math.exp(-np.mean(ids) / 100)) for ids in windows]  # softmax([0, z])[1] by hand
    assert max(each) - min(each) > 0.01  # the windows disagree, so the mean is none of them
    p = positive_probabilities(_IdMeanClassifier(), tok, encoded, batch_tokens=40)  # several per batch
    assert p.shape == (2,)
    assert p[1] == pytest.approx(np.mean(each), abs=1e-6)


# ---- tiny trainings ---------------------------------------------------------------------------------------


def _with_long_posts(path: Path) -> Path:
    frame = pd.read_csv(path)
    long = frame.index % 5 == 0
    frame.loc[long, "text"] = frame.loc[long, "text"].map(lambda t: " ".join([t] * 8))
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def steps_run(tiny_bert: Path, tmp_path_factory) -> Path:
    """One seed evaluated every 3 steps, best checkpoint by macro F1, long posts averaged over windows."""
    from medsift.ade.train import train

    tmp = tmp_path_factory.mktemp("steps")
    data = _with_long_posts(make_ade_csv(tmp / "train.csv", n=60))
    config = tiny_config(
        tiny_bert,
        data,
        tmp / "run",
        model={"long_posts": "windows", "window_stride": 8},
        training={"num_train_epochs": 2, "eval_strategy": "steps", "eval_steps": 3},
        selection_metric="macro_f1",
    )
    return train(config, quiet=True)


def _expected_too_long(run: Path) -> dict[str, int]:
    from transformers import AutoTokenizer

    from medsift.ade.encode import encode_posts
    from medsift.preprocess import normalize_text

    tok = AutoTokenizer.from_pretrained(run / "seed-7" / "model")
    splits = pd.read_csv(run / "splits.csv", dtype=str)
    texts = pd.read_csv(splits["source"].iloc[0], dtype=str).set_index("id")["text"]
    out = {}
    for split, rows in splits.groupby("split"):
        posts = [normalize_text(t) for t in texts.loc[rows["id"]]]
        out[split] = sum(encode_posts(tok, posts, max_length=32).too_long())
    return out


@pytest.mark.slow
def test_step_evaluation_and_macro_f1_selection(steps_run: Path):
    metrics = json.loads((steps_run / "seed-7" / "metrics.json").read_text())
    steps = [h["step"] for h in metrics["history"]]
    regular = [s for s in steps if s != steps[-1]]  # the Trainer also evaluates at the last step
    assert len(regular) >= 3 and regular == list(range(3, 3 * len(regular) + 1, 3))  # every 3 optimizer steps
    best = max(h["eval_macro_f1"] for h in metrics["history"])
    assert metrics["best"]["eval_macro_f1"] == pytest.approx(best)
    assert metrics["best_checkpoint"].endswith(
        f"checkpoint-{next(h['step'] for h in metrics['history'] if h['eval_macro_f1'] == best)}"
    )


@pytest.mark.slow
def test_training_records_truncated_posts_per_split(steps_run: Path):
    recorded = json.loads((steps_run / "seed-7" / "metrics.json").read_text())["truncated_posts"]
    expected = _expected_too_long(steps_run)
    assert {k: recorded[k] for k in ("train", "val", "calib")} == expected
    assert sum(expected.values()) == 12  # every 5th of the 60 rows is long, each counted once (not per copy)
    assert recorded["policy"] == "windows" and recorded["max_length"] == 32
    assert recorded["rows"] == {"train": 36, "val": 12, "calib": 12}
    assert json.loads((steps_run / "metrics.json").read_text())["truncated_posts"] == recorded


@pytest.mark.slow
def test_predict_says_how_many_posts_were_too_long(steps_run: Path, tmp_path: Path, capsys):
    from medsift.cli import main

    test = _with_long_posts(make_ade_csv(tmp_path / "test.csv", n=20, seed=3))
    main(["predict", str(steps_run), str(test), "-o", str(tmp_path / "sub.csv")])  # -q silences the notes
    err = capsys.readouterr().err
    assert (
        "4 of 20 posts longer than max_length 32 tokens: long_posts=windows averaged overlapping windows"
        in err
    )


@pytest.mark.slow
def test_a_non_main_process_writes_nothing_of_its_own(tiny_bert: Path, tmp_path: Path, monkeypatch):
    """Under accelerate/torchrun only rank 0 writes medsift's files; the others only meet it at barriers."""
    import medsift.ade.train as ade_train

    barriers = []
    import medsift.trainer
    import medsift.training

    # the trainer, the skeleton around it and the shared seed-finishing helper
    for module in (ade_train, medsift.trainer, medsift.training):
        monkeypatch.setattr(module, "is_main_process", lambda: False, raising=False)
        monkeypatch.setattr(module, "wait_for_everyone", lambda: barriers.append(1), raising=False)
    data = make_ade_csv(tmp_path / "train.csv", n=40)
    config = tiny_config(tiny_bert, data, tmp_path / "run", training={"num_train_epochs": 1})
    run = ade_train.train(config, quiet=True)
    written = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    ours = {"config.yaml", "splits.csv", "thresholds.json", "metrics.json", "medsift_run.json"}
    assert not ours & written
    assert not [p for p in written if p.endswith(("_probabilities.csv", "metrics.json", "DONE"))]
    assert (run / "seed-7" / "checkpoints").is_dir()  # removing checkpoints is the main process's job too
    assert len(barriers) == 3  # after the splits, after the seed, at the end


@pytest.mark.parametrize(
    ("env", "main"),
    [({}, True), ({"RANK": "0"}, True), ({"RANK": "1"}, False), ({"OMPI_COMM_WORLD_RANK": "3"}, False)],
)
def test_the_launchers_rank_decides_the_main_process_before_the_trainer_starts(env, main, monkeypatch):
    """Before any Trainer has started the process group (e.g. a CPU torchrun launch), the launcher's
    environment says who is rank 0: every process must not think it is the main one."""
    import torch.distributed as dist

    from medsift.training import is_main_process

    assert not (dist.is_available() and dist.is_initialized())
    for name in ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_main_process() is main


def test_every_config_key_is_documented():
    """docs/configs.md names every key of every schema (ade, impacts, llm), so the docs cannot fall behind."""
    from pydantic import BaseModel

    from medsift.config import _SCHEMAS, _load_schema_modules

    _load_schema_modules()
    docs = (Path(__file__).resolve().parents[1] / "docs" / "configs.md").read_text(encoding="utf-8")

    def keys(model: type[BaseModel], prefix: str = ""):
        for name, field in model.model_fields.items():
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                yield from keys(kind, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}"

    missing = sorted({k for schema in _SCHEMAS.values() for k in keys(schema) if f"`{k}`" not in docs})
    assert not missing, f"undocumented config keys: {missing}"


def test_freezing_the_vocabulary_and_lower_layers(tiny_bert: Path):
    from transformers import AutoModelForSequenceClassification

    from medsift.ade.train import freeze_for_training
    from medsift.errors import MedsiftError

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    freeze_for_training(model, freeze_embeddings=True, freeze_layers=1)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert not any("word_embeddings" in n or ".layer.0." in n for n in trainable)
    assert any(".layer.1." in n for n in trainable) and any(n.startswith("classifier") for n in trainable)
    assert any("position_embeddings" in n for n in trainable)  # only the vocabulary matrix is fixed
    with pytest.raises(MedsiftError, match="has 2 layers"):
        freeze_for_training(model, freeze_embeddings=False, freeze_layers=3)


def test_bf16_auto_follows_the_hardware(monkeypatch):
    from medsift import training

    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training.resolve_bf16("auto") is False and training.resolve_bf16(True) is True
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: True)
    assert training.resolve_bf16("auto") is True
    assert (
        parse_config(
            {"task": "ade", "data": {"train": ["x.csv"]}, "training": {"bf16": "auto"}}
        ).training.bf16
        == "auto"
    )
