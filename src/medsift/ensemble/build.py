"""``medsift ensemble``: one call that builds an ensemble run from member specs, of either task."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsift.ensemble.ade import EnsembleOptions
from medsift.errors import MedsiftError


@dataclass
class BuiltEnsemble:
    path: Path
    kind: str  # ade-ensemble | impacts-ensemble
    warnings: list[str] = field(default_factory=list)
    report: str = ""  # the ADE ensemble's report.md


def build_from_specs(
    members: list[str],
    output: Path,
    options: EnsembleOptions,
    *,
    per_seed: bool = False,
    calib_files: list[Path] | None = None,
    tie: str | None = None,
) -> BuiltEnsemble:
    """Impact-tagger runs vote token by token (``method`` hard); anything else is an ADE ensemble of the members
    ``members`` names (runs, ``RUN@seed<N>``, probability files), with ``calib_files`` (one per member) for
    members that lack calib rows. ``tie`` (hard votes only) overrides ``options.tie``."""
    from medsift.impacts.ensemble import build_tagger_ensemble, is_impacts_run

    if members and all(is_impacts_run(m) for m in members):
        if options.method != "hard":
            raise MedsiftError("impact-tagger runs combine by a token-level vote: use --method hard")
        return BuiltEnsemble(build_tagger_ensemble(members, output), "impacts-ensemble")
    from medsift.ensemble.ade import build_ensemble
    from medsift.ensemble.members import parse_member, read_member_probabilities, unique_names

    found = unique_names([m for spec in members for m in parse_member(spec, expand_seeds=per_seed)])
    if calib_files:
        if len(calib_files) != len(found):
            raise MedsiftError(
                f"{len(calib_files)} --calib-file for {len(found)} members; give one per member"
            )
        for member, path in zip(found, calib_files, strict=True):
            member.calib_path, member.calib = path.resolve(), read_member_probabilities(path)
    if tie is not None:
        if options.method != "hard":
            raise MedsiftError("--tie applies to --method hard only (soft and weighted votes have no ties)")
        options.tie = tie
    spec: dict[str, Any] = build_ensemble(found, output, options)
    return BuiltEnsemble(
        output, "ade-ensemble", list(spec["warnings"]), (output / "report.md").read_text(encoding="utf-8")
    )
