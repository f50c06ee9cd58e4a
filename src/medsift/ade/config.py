"""The ADE classifier config schema (``task: ade``, ``method: encoder``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from medsift.config import StrictModel, TrainingSection, register_schema

# What each long-post policy does with a post longer than the model's room (shown to users).
LONG_POST_POLICIES = {
    "head": "kept its first tokens",
    "head_tail": "kept its head and its tail",
    "windows": "averaged overlapping windows",
}


def truncation_note(posts: int, rows: int, max_length: int, policy: str, run: str | None = None) -> str:
    """One line telling the user how many posts did not fit the model and what was done about them."""
    where = f" ({run})" if run else ""
    if not posts:
        return f"no post longer than max_length {max_length} tokens{where}"
    return (
        f"{posts} of {rows} posts longer than max_length {max_length} tokens{where}: long_posts={policy} "
        f"{LONG_POST_POLICIES.get(policy, policy)}"
    )


# Fields every ADE classifier config has (encoder, n-gram, zero-shot), defined once.
THRESHOLD = Field(0.5, gt=0, lt=1, description="Decision threshold until the decision layer tunes one.")
LANGUAGES = Field(
    None,
    min_length=1,
    description="Restrict the run to these languages (e.g. [ja]): it trains on their rows only, chooses its "
    "checkpoint on their val rows, and an ensemble uses it on posts of these languages only.",
)


class AdeModelSection(StrictModel):
    name: str = Field(
        "offline:e5-small", description="Hub id, local folder or offline alias (offline:e5-small)."
    )
    max_length: int = Field(256, ge=8, description="Model inputs in subword tokens, special tokens included.")
    long_posts: Literal["head", "head_tail", "windows"] = Field(
        "head_tail",
        description="Posts longer than max_length: keep the head; keep head and tail (head_fraction of the room "
        "to the head); or split into overlapping windows and average their probabilities.",
    )
    head_fraction: float = Field(0.5, gt=0, lt=1)
    window_stride: int = Field(
        64, ge=1, description="Tokens shared by consecutive windows (long_posts: windows)."
    )
    freeze_embeddings: bool = Field(
        False,
        description="Keep the vocabulary matrix fixed while training (82 % of e5-small's weights: its gradient and "
        "AdamW update are most of a CPU step's optimizer time).",
    )
    freeze_layers: int = Field(
        0, ge=0, description="Keep the lowest N transformer layers fixed while training (0 = train them all)."
    )


class AdeDataSection(StrictModel):
    train: list[str] = Field(
        ..., min_length=1, description="Training files, merged (ids may repeat across files)."
    )
    dev: str | None = Field(None, description="Checkpoint-selection file; carved from train when absent.")
    calib: str | None = Field(None, description="Calibration/threshold file; carved from train when absent.")
    val_fraction: float = Field(0.1, ge=0, lt=1)
    calib_fraction: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Rows kept for thresholds/calibration only (never trained on or selected on).",
    )
    split_seed: int = 13
    normalize: bool = True
    oversample_positives: float = Field(
        1.0, ge=1.0, description="Each training positive appears this many times."
    )
    max_train_rows: int | None = Field(None, ge=10, description="Stratified subsample of the training files.")


class LossSection(StrictModel):
    name: Literal["ce", "focal"] = "ce"
    focal_alpha: float | None = Field(
        0.75, ge=0, le=1, description="Weight of the positive class; null = off."
    )
    focal_gamma: float = Field(2.0, ge=0)
    class_weights: list[float] | None = Field(None, min_length=2, max_length=2, description="[w_neg, w_pos]")
    distill_weight: float = Field(
        0.8,
        ge=0,
        le=1,
        description="medsift distill only: weight of the teacher's soft targets; the rest goes to the gold labels.",
    )


@register_schema("ade", "encoder")
class AdeConfig(StrictModel):
    task: Literal["ade"] = "ade"
    method: Literal["encoder"] = "encoder"
    model: AdeModelSection = Field(default_factory=AdeModelSection)
    data: AdeDataSection
    loss: LossSection = Field(default_factory=LossSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    seeds: list[int] = Field(default_factory=lambda: [42], min_length=1)
    selection_metric: Literal["f1", "macro_f1", "neg_loss"] = Field(
        "f1", description="Checkpoint selection on the validation split: positive-class F1 by default."
    )
    threshold: float = THRESHOLD
    languages: list[str] | None = LANGUAGES
    output_dir: str = "runs/ade"

    @model_validator(mode="after")
    def _unique_seeds(self) -> AdeConfig:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        if self.loss.name == "focal" and self.training.label_smoothing_factor > 0:
            raise ValueError(
                "training.label_smoothing_factor applies to loss.name: ce only (focal loss has no smoothed form)"
            )
        return self
