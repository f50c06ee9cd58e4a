"""Config schemas for ``method: llm`` (both tasks): model, LoRA, prompt, data, training, decoding."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from medsift.config import StrictModel, TrainingSection, register_schema

IMPACT_LABELS = ["B-ClinicalImpacts", "I-ClinicalImpacts", "B-SocialImpacts", "I-SocialImpacts"]


class LlmModelSection(StrictModel):
    """Which causal LM and how to load it."""

    name: str = "offline:smollm2"
    chat_template: str = Field(
        "model",
        description="'model' (the tokenizer's own template), 'chatml' (the papers' prompts), or a Jinja file",
    )
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    max_length: int = 512
    torch_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"

    @model_validator(mode="after")
    def _one_quantisation(self) -> LlmModelSection:
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("choose load_in_4bit or load_in_8bit, not both")
        return self


class LoraSection(StrictModel):
    """LoRA adapter settings (the papers: r 8, alpha 32, dropout 0.1)."""

    r: int = 8
    alpha: int = 32
    dropout: float = 0.1
    target_modules: list[str] | str = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


class PromptSection(StrictModel):
    """Prompt texts; empty strings mean the shipped defaults of ``medsift.llm.prompts``."""

    system: str = ""
    instruction: str = ""
    labels: list[str] = Field(
        default_factory=list,
        description="Span labels the model may write; empty = taken from the training tags (Task 7's when none)",
    )


class LlmDataSection(StrictModel):
    """Impact spans: the train files and a validation share (checkpoints are chosen on its loss)."""

    train: list[str] = Field(default_factory=list)
    dev: str | None = None
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    max_train_rows: int | None = None
    max_val_rows: int | None = None
    seed: int = 42
    normalize: bool = True


class AdeLlmDataSection(StrictModel):
    """ADE: the encoder runs' split keys and defaults, carved by ``medsift.ade.data.load_splits``.

    With the same files and keys as an encoder run, an LLM run scores the same val and calib rows, so the two
    can join one ensemble, and the LLM never trains on the rows that tune the ensemble's thresholds.
    """

    train: list[str] = Field(
        default_factory=list, description="Training files, merged (empty only for zero-shot runs)."
    )
    dev: str | None = Field(None, description="Checkpoint-selection file; carved from train when absent.")
    calib: str | None = Field(None, description="Calibration/threshold file; carved from train when absent.")
    val_fraction: float = Field(0.1, ge=0, lt=1)
    calib_fraction: float = Field(
        0.1, ge=0, lt=1, description="Rows kept for thresholds/calibration only (never trained on)."
    )
    split_seed: int = 13
    normalize: bool = True
    oversample_positives: float = Field(
        1.0, ge=1.0, description="Each training positive appears this many times."
    )
    max_train_rows: int | None = Field(
        None, ge=10, description="Stratified subsample of the training files (before the split)."
    )


class DecodingSection(StrictModel):
    """Span generation: constrained to the output grammar or free, and how long posts are cut."""

    constrained: bool = True
    max_new_tokens: int = 256
    chunk_tokens: int = 64


class _LlmBase(StrictModel):
    method: Literal["llm"] = "llm"
    model: LlmModelSection = Field(default_factory=LlmModelSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    prompt: PromptSection = Field(default_factory=PromptSection)
    training: TrainingSection = Field(
        default_factory=lambda: TrainingSection(
            learning_rate=5e-5, per_device_train_batch_size=4, num_train_epochs=1
        )
    )
    seeds: list[int] = Field(default_factory=lambda: [42])
    output_dir: str = "runs/llm"
    decoding: DecodingSection = Field(default_factory=DecodingSection)

    @model_validator(mode="after")
    def _unique_seeds(self) -> _LlmBase:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be one or more distinct integers, got {self.seeds}")
        return self


@register_schema("ade", "llm")
class AdeLlmConfig(_LlmBase):
    """ADE: the model answers ``1`` or ``0``; its confidence is read from the first answer position."""

    task: Literal["ade"] = "ade"
    data: AdeLlmDataSection = Field(default_factory=AdeLlmDataSection)


@register_schema("impacts", "llm")
class ImpactsLlmConfig(_LlmBase):
    """Impact spans: the model lists ``<Index> : <Token> : <Label>`` lines or ``None``."""

    task: Literal["impacts"] = "impacts"
    data: LlmDataSection = Field(default_factory=LlmDataSection)


def is_zero_shot(config) -> bool:
    """No training steps: the run uses the base model as it is (no adapter is written or loaded)."""
    return config.training.num_train_epochs == 0 and config.training.max_steps <= 0


def labels_from_tags(tag_lists) -> list[str]:
    """B-/I- labels of every entity type in ``tag_lists`` (B before I, types sorted)."""
    kinds = sorted({t[2:] for tags in tag_lists for t in tags if t[:2] in ("B-", "I-")})
    return [f"{p}-{k}" for k in kinds for p in ("B", "I")] or list(IMPACT_LABELS)


def with_labels(config, tag_lists=()):
    """``config`` with ``prompt.labels`` filled in (from ``tag_lists``) when the config left it empty."""
    if config.task != "impacts" or config.prompt.labels:
        return config
    prompt = config.prompt.model_copy(update={"labels": labels_from_tags(tag_lists)})
    return config.model_copy(update={"prompt": prompt})
