"""Request and response bodies of the service (pydantic): what OpenAPI documents and what is refused with 422.

Text limits depend on the app (``max_chars``), so request models are built by :func:`request_models`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    StringConstraints,
    model_validator,
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("text is empty or only whitespace")
    return value


class AdeResult(BaseModel):
    p_ade: float = Field(description="Probability of an adverse drug event (mean over the run's seeds).")
    label: int = Field(description="1 when p_ade >= threshold, else 0.")
    threshold: float = Field(
        description="The threshold used for this post (per language when the run has them)."
    )


class AdeResponse(BaseModel):
    results: list[AdeResult]


class SpanOut(BaseModel):
    label: str
    start: int = Field(description="Character offset (texts in) or token index (tokens in).")
    end: int = Field(description="Exclusive end, in the same unit as start.")
    text: str


class ImpactsResult(BaseModel):
    spans: list[SpanOut]
    tags: list[str] | None = Field(None, description="BIO tag per input token (token input only).")


class ImpactsResponse(BaseModel):
    unit: Literal["char", "token"]
    results: list[ImpactsResult]


def request_models(max_chars: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """(AdeRequest, ImpactsRequest) refusing texts that are empty, not strings, or over ``max_chars``."""
    Text = Annotated[StrictStr, StringConstraints(max_length=max_chars), AfterValidator(_not_blank)]
    Token = Annotated[StrictStr, StringConstraints(min_length=1, max_length=max_chars)]

    class AdeRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: list[Text] = Field(min_length=1, description=f"Posts, each 1..{max_chars} characters.")
        languages: list[StrictStr] | None = Field(
            None, description="ISO code per post (en, de, ...); selects per-language thresholds."
        )

        @model_validator(mode="after")
        def _same_length(self) -> Any:
            if self.languages is not None and len(self.languages) != len(self.texts):
                raise ValueError(
                    f"{len(self.languages)} languages for {len(self.texts)} texts; give one per text"
                )
            return self

    class ImpactsRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: list[Text] | None = Field(
            None, description="Raw posts; spans come back with character offsets."
        )
        tokens: list[Annotated[list[Token], Field(min_length=1)]] | None = Field(
            None, description="Pre-split posts; spans come back with token indices, plus one tag per token."
        )

        @model_validator(mode="after")
        def _one_input(self) -> Any:
            if (self.texts is None) == (self.tokens is None):
                raise ValueError("give exactly one of 'texts' or 'tokens'")
            posts = self.texts if self.texts is not None else self.tokens
            if not posts:
                raise ValueError("no posts given")
            for i, post in enumerate(self.tokens or []):
                if sum(len(t) + 1 for t in post) > max_chars:
                    raise ValueError(f"post {i} is longer than {max_chars} characters")
            return self

    return AdeRequest, ImpactsRequest
