"""One config that trains several ADE members and the ensemble over them (``task: ade``, ``method: ensemble``).

``medsift train ade-cpu-full`` is this: a character n-gram member and a multilingual encoder, each trained on the
same files with the same carved splits (so their val and calib rows are the same rows), then combined by
:func:`medsift.ensemble.ade.build_ensemble` with the config's ``ensemble`` options. The run folder is the
ensemble (kind ``ade-ensemble``: ``predict``, ``serve``, ``report`` and ``compare`` take it); each member is a
complete run of its own under ``members/<name>/``. Killed and started again, finished members are kept, an
unfinished encoder resumes from its last checkpoint, and the ensemble is fit last.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from medsift.ade.config import AdeDataSection
from medsift.config import StrictModel, parse_config, register_schema
from medsift.errors import ConfigError, MedsiftError

log = logging.getLogger(__name__)
MEMBERS_DIR = "members"


class RecipeEnsembleSection(StrictModel):
    """The options of ``medsift ensemble`` (see ``medsift ensemble --help`` and docs/decision.md)."""

    method: Literal["soft", "weighted", "hard", "stacking"] = "weighted"
    weights_by: Literal["none", "language"] = "language"
    weight_shrink: float = Field(20.0, ge=0)
    weight_step: float = Field(0.1, gt=0, le=1)
    thresholds: Literal["global", "tuned_global", "per_language"] = "per_language"
    threshold_shrink: float = Field(20.0, ge=0)
    fallback: Literal["mean", "pooled", "global"] = Field(
        "global",
        description="Threshold of languages with no threshold of their own and no member trained on them: global "
        "(0.5) beat thresholds tuned on the trained languages in leave-one-language-out runs.",
    )
    min_positives: int = Field(5, ge=1)
    metric: Literal["f1", "macro_f1"] = "f1"
    calibrate: Literal["none", "temperature", "platt"] = "none"
    stack_folds: int = Field(5, ge=2, description="method stacking: cross-fitting folds on the calib rows.")
    stack_c: float = Field(1.0, gt=0, description="method stacking: inverse L2 regularisation.")
    stack_features: list[str] | None = Field(
        None,
        description="method stacking: members whose per-post features (feat__ columns) join the regression.",
    )


@register_schema("ade", "ensemble")
class AdeRecipeConfig(StrictModel):
    task: Literal["ade"] = "ade"
    method: Literal["ensemble"] = "ensemble"
    data: AdeDataSection = Field(
        ..., description="Shared by every member: the same files and the same splits."
    )
    members: dict[str, dict[str, Any]] = Field(
        ...,
        min_length=1,
        description="name -> a member config without task and data (method: encoder | ngram | llm, and its keys).",
    )
    ensemble: RecipeEnsembleSection = Field(default_factory=RecipeEnsembleSection)
    output_dir: str = "runs/ade-ensemble"

    @field_validator("members")
    @classmethod
    def _members_are_valid_configs(cls, members: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, body in members.items():
            if not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"member name {name!r}: use letters, digits, - and _")
            if not isinstance(body, dict):
                raise ValueError(f"member {name!r} must be a mapping of config keys")
            if "data" in body or "task" in body or "output_dir" in body:
                raise ValueError(f"member {name!r}: data, task and output_dir come from the ensemble config")
        return members

    def member_config(self, name: str, run_dir: Path) -> StrictModel:
        """The full config of one member: its own keys, the shared data, and a folder inside the run."""
        raw = {
            **self.members[name],
            "task": "ade",
            "data": self.data.model_dump(mode="json"),
            "output_dir": str(run_dir / MEMBERS_DIR / name),
        }
        try:
            return parse_config(raw)
        except ConfigError as exc:
            raise ConfigError(f"members.{name}: {exc.problem}") from None


def _member_trainer(method: str):
    """The trainer of an ADE member method (the kinds an ADE ensemble takes: classifier and LLM runs)."""
    if method == "encoder":
        from medsift.ade.train import train
    elif method == "ngram":
        from medsift.ade.ngram import train
    elif method == "llm":
        from medsift.llm.train import train
    elif method in ("nli", "gliner"):  # zero-shot scorers: nothing trained, val and calib rows scored
        from medsift.ade.zeroshot.run import train
    else:
        raise ConfigError(f"an ADE ensemble member cannot be trained with method {method!r}")
    return train


def train(config: AdeRecipeConfig, *, run_dir: Path | None = None, quiet: bool = False) -> Path:
    """Train every member (resuming unfinished ones), then fit the ensemble into ``run_dir``."""
    from medsift.ensemble.ade import EnsembleOptions, build_ensemble
    from medsift.ensemble.members import parse_member
    from medsift.runs import RunManifest
    from medsift.trainer import start_run

    run_dir = Path(run_dir or config.output_dir)
    member_configs = {
        name: config.member_config(name, run_dir) for name in config.members
    }  # all checked first
    start_run(run_dir, config, write=True)
    found = []
    for name, member in member_configs.items():
        member_dir = run_dir / MEMBERS_DIR / name
        if not (member_dir / "medsift_run.json").exists():
            log.info("training member %s (%s)", name, member.method)  # type: ignore[attr-defined]
            _member_trainer(member.method)(member, run_dir=member_dir, quiet=quiet)  # type: ignore[attr-defined]
        if RunManifest.load(member_dir).kind not in ("ade-classifier", "ade-llm"):
            raise MedsiftError(
                "a member of an ADE ensemble must be an ADE classifier or LLM run", file=member_dir
            )
        found += parse_member(str(member_dir))
    for member in found:
        member.name = member.path.name  # the member's name in the config, not "run"
    options = EnsembleOptions(**config.ensemble.model_dump())
    build_ensemble(found, run_dir, options, relative_members=True)
    return run_dir
