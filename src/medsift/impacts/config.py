"""Config schema of the impact span tagger (``task: impacts``, ``method: encoder``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from medsift.config import StrictModel, TrainingSection, register_schema


class ImpactsModelSection(StrictModel):
    """The encoder and how long posts are windowed."""

    name: str = Field(description="hub id, local folder or offline alias (offline:minilm, offline:e5-small)")
    max_length: int = Field(256, ge=8, description="subwords per window, special tokens included")
    stride: int = Field(64, ge=0, description="overlap between consecutive windows, in subwords")
    word_strategy: Literal["first", "vote"] = "first"
    crf: bool = False


class ImpactsDataSection(StrictModel):
    """Training files; without ``dev`` a validation split is carved from the training rows."""

    train: list[str] = Field(min_length=1)
    dev: str | None = None
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    max_train_rows: int | None = Field(None, ge=1)
    seed: int = 13
    val_split: Literal["shared", "per_seed"] = Field(
        "shared",
        description="without dev: 'shared' = every seed holds out the same val_fraction of the posts; "
        "'per_seed' = each seed holds out its own (seeded by data.seed and the seed), so a multi-seed run "
        "learns from every post (a fold-style ensemble)",
    )
    oversample_types: dict[str, float] = Field(
        default_factory=dict,
        description="type -> factor: a training post with a span of that type appears factor times in all "
        "(the largest factor of its types; a fraction adds a seeded share of one more copy). Training rows only.",
    )

    @model_validator(mode="after")
    def _factors(self) -> ImpactsDataSection:
        for kind, factor in self.oversample_types.items():
            if factor < 1:
                raise ValueError(f"oversample_types: {kind}: factor must be >= 1, got {factor}")
        return self


class ImpactsPostprocessSection(StrictModel):
    """Span clean-up after prediction (and of the validation posts scored in ``metrics.json``)."""

    merge_gap: int = Field(
        0, ge=0, description="join spans of one type at most this many O tokens apart (0 = off)"
    )
    o_bias: float = Field(
        0.0,
        description="subtracted from the O score of every subword before the argmax (or the CRF's Viterbi): "
        "above 0 more tokens are tagged inside spans, trading precision for recall",
    )
    type_bias: dict[str, float] = Field(
        default_factory=dict,
        description="type -> value added to that type's scores (B- and I-, or its IO class) before the argmax, "
        "after o_bias: above 0 more tokens of that type, e.g. {SocialImpacts: 1.0} for the rarer type",
    )
    extend: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="grow each predicted span into the neighbouring O words whose probability of the span's "
        "type (the seeds' mean) is at least this; 0 = off. Spans start where the argmax puts them and reach "
        "as far as this lower bar allows (hysteresis)",
    )
    vote: Literal["hard", "soft"] = Field(
        "hard",
        description="how several seeds are combined: 'hard' = a token-level majority vote over each seed's "
        "tags then BIO repair; 'soft' = the seeds' subword probabilities averaged before o_bias and the "
        "argmax (taggers with a CRF always vote hard)",
    )


@register_schema("impacts", "encoder")
class ImpactsConfig(StrictModel):
    """A token-classification tagger for ClinicalImpacts / SocialImpacts spans."""

    task: Literal["impacts"] = "impacts"
    method: Literal["encoder"] = "encoder"
    model: ImpactsModelSection
    data: ImpactsDataSection
    scheme: Literal["bio", "io"] = "bio"
    postprocess: ImpactsPostprocessSection = Field(default_factory=ImpactsPostprocessSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    seeds: list[int] = Field(default_factory=lambda: [42], min_length=1)
    output_dir: str = "runs/impacts"
    selection_metric: Literal["strict_f1", "relaxed_f1"] = "strict_f1"

    @model_validator(mode="after")
    def _check(self) -> ImpactsConfig:
        if self.model.stride >= self.model.max_length - 2:
            raise ValueError(f"model.stride ({self.model.stride}) must be smaller than model.max_length - 2")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        return self
