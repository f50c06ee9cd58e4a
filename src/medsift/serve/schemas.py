"""Request and response bodies of the service (pydantic): what OpenAPI documents and what is refused with 422.

Limits depend on the app (``max_chars``, ``max_batch``), so request models are built by :func:`request_models`.
A request with more posts than ``max_batch`` raises :class:`TooManyPosts` (answered with 413) before a
single post is validated.
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


class TooManyPosts(Exception):
    """More posts in one request than the service takes; not a ValueError, so pydantic lets it through."""

    def __init__(self, count: int, limit: int):
        self.count, self.limit = count, limit
        super().__init__(f"{count} posts in one request; the limit is {limit} (split the request)")


def _count_first(data: Any, max_batch: int | None, keys: tuple[str, ...]) -> Any:
    """Refuse a body with too many posts from its raw JSON, before any post is validated (cheap)."""
    if max_batch is not None and isinstance(data, dict):
        for key in keys:
            posts = data.get(key)
            if isinstance(posts, list) and len(posts) > max_batch:
                raise TooManyPosts(len(posts), max_batch)
    return data


def _check_ids(ids: list[str] | None, posts: int) -> None:
    if ids is None:
        return
    if len(ids) != posts:
        raise ValueError(f"{len(ids)} ids for {posts} posts; give one per post")
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique within a request")


def with_ids(results: list[Any], ids: list[str] | None) -> list[Any]:
    """Each result with its post's id (the request's, else the 0-based position), in request order."""
    names = ids if ids is not None else [str(i) for i in range(len(results))]
    return [r.model_copy(update={"id": name}) for r, name in zip(results, names, strict=True)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("text is empty or only whitespace")
    return value


class AdeResult(BaseModel):
    id: str | None = Field(
        None, description="The request's id for this post (ids), else its 0-based position."
    )
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
    id: str | None = Field(
        None, description="The request's id for this post (ids), else its 0-based position."
    )
    spans: list[SpanOut]
    tags: list[str] | None = Field(None, description="BIO tag per input token (token input only).")


class ImpactsResponse(BaseModel):
    unit: Literal["char", "token"]
    results: list[ImpactsResult]


def request_models(max_chars: int, max_batch: int | None = None) -> tuple[type[BaseModel], type[BaseModel]]:
    """(AdeRequest, ImpactsRequest) refusing texts that are empty, not strings, or over ``max_chars``,
    and (with :class:`TooManyPosts`) requests of more than ``max_batch`` posts."""
    Text = Annotated[StrictStr, StringConstraints(max_length=max_chars), AfterValidator(_not_blank)]
    Token = Annotated[StrictStr, StringConstraints(min_length=1, max_length=max_chars)]
    Ids = list[Annotated[StrictStr, StringConstraints(max_length=256)]] | None
    ids_help = "Optional id per post (at most 256 characters), echoed in each result, in order."

    class AdeRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: list[Text] = Field(min_length=1, description=f"Posts, each 1..{max_chars} characters.")
        languages: list[Annotated[StrictStr, StringConstraints(max_length=64)]] | None = Field(
            None,
            description="ISO code per post (en, de, ...; at most 64 characters); selects per-language thresholds.",
        )
        ids: Ids = Field(None, description=ids_help)

        @model_validator(mode="before")
        @classmethod
        def _count(cls, data: Any) -> Any:
            return _count_first(data, max_batch, ("texts",))

        @model_validator(mode="after")
        def _same_length(self) -> Any:
            if self.languages is not None and len(self.languages) != len(self.texts):
                raise ValueError(
                    f"{len(self.languages)} languages for {len(self.texts)} texts; give one per text"
                )
            _check_ids(self.ids, len(self.texts))
            return self

    class ImpactsRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: list[Text] | None = Field(
            None, description="Raw posts; spans come back with character offsets."
        )
        tokens: list[Annotated[list[Token], Field(min_length=1)]] | None = Field(
            None, description="Pre-split posts; spans come back with token indices, plus one tag per token."
        )
        ids: Ids = Field(None, description=ids_help)

        @model_validator(mode="before")
        @classmethod
        def _count(cls, data: Any) -> Any:
            return _count_first(data, max_batch, ("texts", "tokens"))

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
            _check_ids(self.ids, len(posts))
            return self

    return AdeRequest, ImpactsRequest
