"""Ensemble members: what can join an ADE ensemble, how its stored probabilities are read, and how it scores new
posts at ``medsift predict`` time.

A member is one of:

- an ADE run directory (``ade-classifier``, ``ade-llm`` or a nested ``ade-ensemble``): its run-level
  ``val_probabilities.csv`` / ``calib_probabilities.csv`` are read;
- one seed of a classifier run (``RUN_DIR@seed7``, or every seed with ``expand_seeds``): the
  ``p_ade__seed<N>`` column of the same files, so that seeds can be voted on;
- a pair of probability files from any system, ``val=PATH,calib=PATH`` (``name=`` optional). Such a member
  has no model: to predict new data, ``medsift predict ENSEMBLE INPUT --member-probabilities NAME=PATH``
  gives that system's probabilities for the input's rows (matched by id; any mismatch is refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medsift.errors import MedsiftError
from medsift.runs import RunManifest

RUN_KINDS = ("ade-classifier", "ade-llm", "ade-ensemble")
FILES_KIND = "probabilities"


@dataclass
class Member:
    """One ensemble member and its stored probabilities (``val``/``calib`` frames, ``None`` when absent)."""

    name: str
    kind: str
    path: Path  # absolute run directory, or the val file of a probability-file member
    seed: int | None = None
    val_path: Path | None = None
    calib_path: Path | None = None
    val: pd.DataFrame | None = field(default=None, repr=False)
    calib: pd.DataFrame | None = field(default=None, repr=False)
    languages: list[str] | None = None  # the languages it can score (an n-gram run's); None = every language

    def to_dict(self) -> dict[str, Any]:
        """What ``ensemble.json`` records about the member (absolute paths, so a copy still finds it)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "path": str(self.path),
            "seed": self.seed,
            "val_file": str(self.val_path) if self.val_path else None,
            "calib_file": str(self.calib_path) if self.calib_path else None,
            "languages": self.languages,
        }


def read_member_probabilities(path: Path, column: str = "p_ade") -> pd.DataFrame:
    """One column of a probability file as a member frame: ``id`` (str), ``language``, ``p_ade``[, ``label``]
    [, ``uid``] (a run's own val/calib files carry ``uid``: the rows' key when ids repeat across files)."""
    from medsift.io import read_probabilities

    frame = read_probabilities(path)
    if column not in frame.columns:
        raise MedsiftError(f"no column {column!r} (columns: {', '.join(frame.columns)})", file=path)
    out = frame[["id", "language"]].copy()
    out["id"] = out["id"].astype(str)
    out["p_ade"] = frame[column].to_numpy(dtype=float)
    if "label" in frame.columns:
        out["label"] = frame["label"]
    if "uid" in frame.columns:
        out["uid"] = frame["uid"].astype(str)
    for name in frame.columns:
        if str(name).startswith("feat__"):  # per-post member features (decision.stacking)
            out[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
    return out


def _file_member(spec: str) -> Member:
    parts: dict[str, str] = {}
    for piece in spec.split(","):
        key, sep, value = piece.partition("=")
        if not sep or key.strip() not in ("val", "calib", "name", "languages") or not value.strip():
            raise MedsiftError(
                f"member {spec!r}: expected val=PATH[,calib=PATH][,name=NAME][,languages=ja+zh] for a "
                "probability-file member"
            )
        parts[key.strip()] = value.strip()
    if "val" not in parts:
        raise MedsiftError(f"member {spec!r}: a probability-file member needs val=PATH")
    val_path = Path(parts["val"]).resolve()
    calib_path = Path(parts["calib"]).resolve() if "calib" in parts else None
    for p in (val_path, calib_path):
        if p is not None and not p.is_file():
            raise MedsiftError("probability file not found", file=p)
    name = parts.get("name") or val_path.stem.removesuffix("_probabilities").removesuffix("_val") or "files"
    languages = sorted(x.strip() for x in parts["languages"].split("+")) if "languages" in parts else None
    return Member(
        name=name,
        kind=FILES_KIND,
        path=val_path,
        languages=languages,
        val_path=val_path,
        calib_path=calib_path,
        val=read_member_probabilities(val_path, "p_ade"),
        calib=read_member_probabilities(calib_path, "p_ade") if calib_path else None,
    )


def _run_member(run_dir: Path, seed: int | None) -> Member:
    manifest = RunManifest.load(run_dir)
    if manifest.kind not in RUN_KINDS:
        raise MedsiftError(
            f"run kind '{manifest.kind}' cannot join an ADE ensemble (expected {', '.join(RUN_KINDS)})",
            file=run_dir,
        )
    column, name = "p_ade", run_dir.name
    if seed is not None:
        if manifest.kind != "ade-classifier" or seed not in manifest.seeds:
            raise MedsiftError(f"no seed {seed} in this run (seeds: {manifest.seeds})", file=run_dir)
        column, name = f"p_ade__seed{seed}", f"{run_dir.name}@seed{seed}"
    val_path, calib_path = run_dir / "val_probabilities.csv", run_dir / "calib_probabilities.csv"
    if not val_path.is_file():
        raise MedsiftError("the run has no val_probabilities.csv", file=run_dir)
    # A single-seed run may not write the p_ade__seed<N> columns: then p_ade is that seed.
    if seed is not None and len(manifest.seeds) == 1:
        column = "p_ade"
    languages = (manifest.extra or {}).get("languages")
    return Member(
        name=name,
        kind=manifest.kind,
        path=run_dir,
        seed=seed,
        languages=list(languages) if isinstance(languages, list) else None,
        val_path=val_path,
        calib_path=calib_path if calib_path.is_file() else None,
        val=read_member_probabilities(val_path, column),
        calib=read_member_probabilities(calib_path, column) if calib_path.is_file() else None,
    )


def parse_member(spec: str, *, expand_seeds: bool = False) -> list[Member]:
    """The member(s) named by one command-line ``spec``: a run directory, ``RUN_DIR@seed<N>`` or files.

    With ``expand_seeds`` a classifier run becomes one member per seed.
    """
    if "=" in spec:
        return [_file_member(spec)]
    path_text, _, seed_text = spec.partition("@seed")
    run_dir = Path(path_text).resolve()
    if not run_dir.is_dir():
        raise MedsiftError("member is neither a run directory nor val=PATH,calib=PATH", file=path_text)
    if seed_text:
        if not seed_text.isdigit():
            raise MedsiftError(f"member {spec!r}: expected RUN_DIR@seed<N> with an integer N")
        return [_run_member(run_dir, int(seed_text))]
    manifest = RunManifest.load(run_dir)
    if expand_seeds and manifest.kind == "ade-classifier" and len(manifest.seeds) > 1:
        return [_run_member(run_dir, s) for s in manifest.seeds]
    return [_run_member(run_dir, None)]


def unique_names(members: list[Member]) -> list[Member]:
    """Rename members that share a name (two runs both called ``run``) to ``run``, ``run-2``, ..."""
    seen: dict[str, int] = {}
    for member in members:
        count = seen.get(member.name, 0) + 1
        seen[member.name] = count
        if count > 1:
            member.name = f"{member.name}-{count}"
    return members


def _llm_seeds(run_dir: Path) -> tuple[Any, list[tuple[Path, Any]]]:
    """An LLM run's config and, per seed, its folder and loaded model (loaded once, reused for every call)."""
    try:
        from medsift.llm.predict import load_seed_model
    except ImportError as exc:  # the LLM extra may be absent
        raise MedsiftError(
            f"cannot run the LLM member ({exc}); install medsift's LLM support", file=run_dir
        ) from exc
    from medsift.config import parse_config, read_yaml

    manifest = RunManifest.load(run_dir)
    config = parse_config(read_yaml(run_dir / "config.yaml"), source=run_dir / "config.yaml")
    seeds = [run_dir / f"seed-{s}" for s in manifest.seeds]
    return config, [(seed_dir, load_seed_model(config, seed_dir)) for seed_dir in seeds]


def _llm_probabilities(
    config: Any, seeds: list[tuple[Path, Any]], texts: list[str], quiet: bool
) -> np.ndarray:
    from medsift.llm.predict import ade_probabilities
    from medsift.preprocess import normalize_text

    if getattr(getattr(config, "data", None), "normalize", False):
        texts = [normalize_text(t) for t in texts]
    per_seed = [ade_probabilities(config, d, texts, quiet=quiet, loaded=loaded) for d, loaded in seeds]
    return np.mean(np.stack(per_seed), axis=0)


def load_given_members(
    paths: dict[str, Path] | None,
    rows: pd.DataFrame,
    input_path: Path,
    features_out: dict[str, dict[str, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """P(ADE) of probability-file members for ``rows``, read from ``NAME -> PATH`` and aligned by id.

    Every file must score exactly the input's ids (no id missing, none extra); anything else is refused.
    ``features_out`` receives each file's per-post ``feat__*`` columns, aligned the same way.
    """
    given: dict[str, np.ndarray] = {}
    ids = rows["id"].astype(str)
    for name, path in (paths or {}).items():
        frame = read_member_probabilities(Path(path))
        frame_ids = frame["id"].astype(str)
        missing = sorted(set(ids) - set(frame_ids))
        extra = sorted(set(frame_ids) - set(ids))
        if missing or extra or frame_ids.duplicated().any():
            problem = f"{len(missing)} id(s) of {input_path} missing" + (
                f" (e.g. {missing[0]!r})" if missing else ""
            )
            problem += f", {len(extra)} id(s) not in it" + (f" (e.g. {extra[0]!r})" if extra else "")
            if frame_ids.duplicated().any():
                problem += ", repeated ids"
            raise MedsiftError(
                f"--member-probabilities {name}: the file must score exactly the input's rows: {problem}",
                file=path,
            )
        given[name] = frame.set_index(frame_ids)["p_ade"].loc[ids].to_numpy(dtype=float)
        if features_out is not None:
            features_out[name] = {
                str(c).removeprefix("feat__"): frame.set_index(frame_ids)[c].loc[ids].to_numpy(dtype=float)
                for c in frame.columns
                if str(c).startswith("feat__")
            }
    return given


class MemberPredictor:
    """Scores new posts with every member.

    Each member run's models are loaded once and kept, so one predictor can score many batches (the HTTP
    service does); within one call, a classifier run whose seeds are several members is scored once.
    ``backend`` (``torch`` or ``onnx``) runs the classifier members; LLM members always run on torch.
    ``given`` holds, per probability-file member name, its probabilities for the posts being scored (see
    :func:`load_given_members`): such a member has no model to run.
    """

    def __init__(
        self, quiet: bool = True, given: dict[str, np.ndarray] | None = None, backend: str = "torch"
    ):
        self.quiet, self.backend = quiet, backend
        self.given = dict(given or {})
        self._loaded: dict[Path, Any] = {}  # run folder -> classifier, or (config, seeds) of an LLM run
        self._outputs: dict[Path, tuple[list[str], Any]] = {}  # run folder -> (texts, prediction)
        # per classifier run: posts longer than its max_length and the long-post policy that handled them
        self.truncation: list[dict[str, Any]] = []
        # per member name: the per-post features it gave with its last probabilities (decision.stacking)
        self.features: dict[str, dict[str, np.ndarray]] = {}

    def member_features(self, members: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """``"<member>:<feature>"`` -> values, for the members of the last call that gave per-post features."""
        return {
            f"{m['name']}:{feature}": values
            for m in members
            for feature, values in self.features.get(m["name"], {}).items()
        }

    def _load(self, run_dir: Path, loader: Any) -> Any:
        if run_dir not in self._loaded:
            self._loaded[run_dir] = loader(run_dir)
        return self._loaded[run_dir]

    def _classifier(self, run_dir: Path, texts: list[str], languages: list[str]):
        cached = self._outputs.get(run_dir)
        if cached is not None and cached[0] is texts:  # the same call's posts: score them once
            return cached[1]
        from medsift.engine.backends import load_classifier

        clf = self._load(run_dir, lambda d: load_classifier(d, backend=self.backend))
        pred = clf.predict(texts, languages, progress=not self.quiet)
        self._outputs[run_dir] = (texts, pred)
        if clf.config.model.max_length is None:  # an n-gram member reads every post whole
            return pred
        self.truncation.append(
            {
                "run": run_dir.name,
                "posts": int(pred.n_truncated),
                "max_length": clf.config.model.max_length,
                "policy": clf.config.model.long_posts,
            }
        )
        return pred

    def predict(self, member: dict[str, Any], texts: list[str], languages: list[str]) -> np.ndarray:
        """P(ADE) per post from one member recorded in ``ensemble.json``."""
        kind, path = member["kind"], Path(member["path"])
        if kind == FILES_KIND:
            if member["name"] in self.given:
                values = self.given[member["name"]]
                if len(values) != len(texts):
                    raise MedsiftError(
                        f"--member-probabilities {member['name']}: {len(values)} rows for {len(texts)} posts"
                    )
                return values
            raise MedsiftError(
                f"member {member['name']!r} is a probability file ({path}) from another system: it has no model "
                f"to score new posts. `medsift predict` takes that system's probabilities for the input's rows "
                f"with --member-probabilities {member['name']}=PATH (a probability file with the input's ids); "
                "elsewhere (e.g. as a distillation teacher) use an ensemble without it"
            )
        if kind == "ade-classifier":
            pred = self._classifier(path, texts, languages)
            # a GLiNER run's per-post features, for stacking
            self.features[member["name"]] = getattr(pred, "features", None) or {}
            if member.get("seed") is None or len(pred.per_seed) == 1:
                return np.asarray(pred.p_ade, dtype=float)
            return np.asarray(pred.per_seed[f"seed{member['seed']}"], dtype=float)
        if kind == "ade-llm":
            config, seeds = self._load(path, _llm_seeds)
            return _llm_probabilities(config, seeds, texts, self.quiet)
        if kind == "ade-ensemble":
            from medsift.ensemble.ade import ensemble_probabilities

            return ensemble_probabilities(path, texts, languages, predictor=self)[0]
        raise MedsiftError(f"member {member['name']!r} has an unknown kind {kind!r}", file=path)
