"""Config schemas of the zero-shot kinds (``task: ade``, ``method: nli`` / ``method: gliner``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from medsift.ade.config import THRESHOLD, AdeDataSection
from medsift.config import StrictModel, register_schema

_LANGUAGES = Field(
    None,
    min_length=1,
    description="Score only these languages: an ensemble uses the run on posts of these languages only.",
)


class ZeroShotModelSection(StrictModel):
    name: str = Field(..., description="Hub id, local folder or offline alias.")
    batch_size: int = Field(16, ge=1, description="Posts per forward pass.")
    max_length: int = Field(
        256, ge=8, description="Tokens per post and hypothesis pair (longer posts are cut)."
    )
    long_posts: Literal["head"] = Field(
        "head", description="A post longer than max_length keeps its head (predict says how many were cut)."
    )


class NliSection(StrictModel):
    scorer: Literal["nli", "similarity"] = Field(
        "nli",
        description="nli: the zero-shot-classification pipeline (an NLI model: entailment of each hypothesis); "
        "similarity: an embedding model, softmax over the cosine similarity of post and hypotheses.",
    )
    hypothesis_template: str = Field(
        "This text mentions {}.", description="The hypothesis, {} is replaced by each candidate label."
    )
    templates: dict[str, str] = Field(
        default_factory=dict, description="Per-language hypothesis templates (language -> template with {})."
    )
    positive: list[str] = Field(
        default_factory=lambda: ["a side effect of a medication"],
        min_length=1,
        description="Candidate labels whose scores add up to P(ADE).",
    )
    negative: list[str] = Field(
        default_factory=lambda: ["a medication without side effects", "something unrelated to medication"],
        min_length=1,
        description="The other candidate labels (the scores are normalised over all candidates).",
    )
    query_prefix: str = Field("", description="similarity: prepended to each post (e5: 'query: ').")
    passage_prefix: str = Field("", description="similarity: prepended to each hypothesis (e5: 'passage: ').")
    temperature: float = Field(
        0.05, gt=0, description="similarity: softmax temperature over cosine similarities."
    )

    @model_validator(mode="after")
    def _templates_take_a_label(self) -> NliSection:
        for key, template in {"hypothesis_template": self.hypothesis_template, **self.templates}.items():
            if "{}" not in template:
                raise ValueError(f"template {key!r} must contain {{}} (where each candidate label goes)")
        return self


class _ZeroShotRun(StrictModel):
    """What every zero-shot kind's config holds besides its model and scorer sections."""

    task: Literal["ade"] = "ade"
    data: AdeDataSection
    languages: list[str] | None = _LANGUAGES
    seeds: list[int] = Field(
        default_factory=lambda: [0], min_length=1, max_length=1, description="Not used: [0]."
    )
    threshold: float = THRESHOLD


@register_schema("ade", "nli")
class AdeNliConfig(_ZeroShotRun):
    method: Literal["nli"] = "nli"
    model: ZeroShotModelSection = Field(
        default_factory=lambda: ZeroShotModelSection(name="MoritzLaurer/mDeBERTa-v3-base-mnli-xnli")
    )
    nli: NliSection = Field(default_factory=NliSection)
    output_dir: str = "runs/ade-nli"


class GlinerSection(StrictModel):
    labels: list[str] = Field(
        default_factory=lambda: ["adverse drug event", "side effect", "symptom", "drug"],
        min_length=1,
        description="Entity labels GLiNER looks for.",
    )
    positive_labels: list[str] = Field(
        default_factory=lambda: ["adverse drug event", "side effect"],
        min_length=1,
        description="The labels whose entities make a post positive: P(ADE) = the highest score among them (0 "
        "without any).",
    )
    entity_threshold: float = Field(0.3, ge=0, le=1, description="GLiNER's own cut for returning an entity.")

    @model_validator(mode="after")
    def _positive_among_labels(self) -> GlinerSection:
        unknown = sorted(set(self.positive_labels) - set(self.labels))
        if unknown:
            raise ValueError(f"positive_labels {unknown} are not among labels {self.labels}")
        return self


@register_schema("ade", "gliner")
class AdeGlinerConfig(_ZeroShotRun):
    method: Literal["gliner"] = "gliner"
    model: ZeroShotModelSection = Field(
        default_factory=lambda: ZeroShotModelSection(name="urchade/gliner_multi-v2.1", batch_size=8)
    )
    gliner: GlinerSection = Field(default_factory=GlinerSection)
    output_dir: str = "runs/ade-gliner"
