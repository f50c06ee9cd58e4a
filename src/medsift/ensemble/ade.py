"""``medsift ensemble``: combine ADE members into a run that ``medsift predict`` can use on new posts.

Which rows tune what (the point of the whole layer):

- member weights come from each member's validation F1 at 0.5 (``val`` rows: they chose the checkpoints, so
  they may rank members but never set a threshold);
- calibrators and thresholds are fit on the members' ``calib`` rows, used for nothing else. When the members
  have no calib rows, ``cross_fit`` K fits them on the val rows and reports an out-of-fold score instead; the
  manifest and the report say so, because those rows also chose the checkpoints.

The ensemble directory holds ``ensemble.json`` (everything needed to predict), ``thresholds.json``,
``calib_probabilities.csv`` / ``val_probabilities.csv`` (combined, with calibrated member columns),
``report.md`` and, written last, ``medsift_run.json`` (kind ``ade-ensemble``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medsift.decision.by_language import GroupWeights, fit_group_weights
from medsift.decision.calibration import (
    Calibrator,
    calibrate_members,
    expected_calibration_error,
    temperature_warning,
)
from medsift.decision.ensemble_report import ensemble_report
from medsift.decision.restricted import combine_known, is_restricted, known_mask
from medsift.decision.stacking import FEATURE_PREFIX, Stacker, cross_fit_stacker, design_matrix
from medsift.decision.thresholds import (
    DEFAULT_GRID,
    ThresholdPolicy,
    cross_fit_thresholds,
    score_labels,
    threshold_groups,
    tune_thresholds,
)
from medsift.decision.voting import align_members, combine, member_key, weights_from_scores
from medsift.ensemble.members import FILES_KIND, Member, MemberPredictor, load_given_members
from medsift.errors import MedsiftError
from medsift.runs import RunManifest, read_json, write_json
from medsift.scoring.ade import CADEC_SUFFIX

ENSEMBLE_FORMAT = "medsift.ade_ensemble/1"
_CHOICES = {
    "method": ("hard", "soft", "weighted", "stacking"),
    "weights_from": ("val_f1", "equal"),
    "weights_by": ("none", "language"),
    "thresholds": ("global", "tuned_global", "per_language"),
    "fallback": ("mean", "pooled", "global"),
    "metric": ("f1", "macro_f1", "fbeta"),
    "calibrate": ("none", "temperature", "platt"),
    "tie": ("positive", "negative", "mean_prob"),
}


@dataclass
class EnsembleOptions:
    """Every choice of ``medsift ensemble`` (see the command's help for each)."""

    method: str = "soft"
    weights: list[float] | None = None
    weights_from: str = "val_f1"
    thresholds: str = "global"
    fallback: str = "mean"
    grid: list[float] | None = None
    metric: str = "f1"
    min_positives: int = 5
    calibrate: str = "none"
    cross_fit: int | None = None
    cross_fit_seed: int = 13
    tie: str = (
        "positive"  # hard vote: a row with exactly half the votes (see medsift.decision.voting.combine)
    )
    weights_by: str = "none"  # "language": weights per threshold group, fit on the calib rows (by_language)
    weight_step: float = 0.1
    weight_shrink: float = 20.0
    threshold_shrink: float = 0.0  # per_language thresholds pulled toward the pooled one (see thresholds)
    stack_folds: int = 5  # method stacking: cross-fitting folds on the calib rows (see decision.stacking)
    stack_c: float = 1.0  # method stacking: inverse L2 regularisation of the logistic regression
    stack_features: list[str] | None = None  # method stacking: members whose feat__ columns join the inputs


@dataclass
class Rows:
    """Aligned rows of every member: ids, labels, languages and the (n_rows, n_members) probabilities.

    ``uids`` is the rows' key when the members were matched on ``uid`` (ids may then repeat), else None.
    """

    ids: np.ndarray
    y: np.ndarray
    languages: np.ndarray
    probs: np.ndarray
    source: list[str]
    uids: np.ndarray | None = None
    features: dict[str, np.ndarray] | None = None  # "<member>:<feature>" -> values (feat__ columns), aligned


def _aligned(members: list[Member], split: str) -> Rows:
    frames = {m.name: getattr(m, split) for m in members}
    key = member_key(frames)
    keys, probs = align_members(frames)
    first = frames[members[0].name]
    first = first.set_index(first[key].astype(str)).loc[list(keys)]
    if "label" not in first.columns or first["label"].isna().any():
        raise MedsiftError(f"member {members[0].name!r}: every {split} row needs a label to tune on it")
    y = first["label"].astype(int).to_numpy()
    sources = [str(getattr(m, f"{split}_path")) for m in members]
    ids = first["id"].astype(str).to_numpy(dtype=object)
    languages = first["language"].astype(str).to_numpy(dtype=object)
    features = {}
    for name, frame in frames.items():
        by_key = frame.set_index(frame[key].astype(str))
        for column in [c for c in frame.columns if c.startswith(FEATURE_PREFIX)]:
            features[f"{name}:{column.removeprefix(FEATURE_PREFIX)}"] = (
                by_key[column].loc[list(keys)].to_numpy(dtype=float)
            )
    return Rows(ids, y, languages, probs, sources, keys if key == "uid" else None, features)


def _member_weights(members: list[Member], val: Rows, options: EnsembleOptions) -> tuple[list, list | None]:
    """(validation F1 at 0.5 per member, normalised weights or None for equal weights).

    Explicit ``weights`` apply to any method (soft + weights is the weighted vote, hard + weights a weighted
    majority); otherwise only ``weighted`` derives weights, from the members' val F1.
    """
    known = known_mask([m.languages for m in members], val.languages)
    f1s = [
        score_labels(val.y[known[:, j]], (val.probs[known[:, j], j] >= 0.5).astype(int))
        for j in range(len(members))
    ]  # a member restricted to some languages is scored on the rows of those languages
    if options.weights is not None:
        if len(options.weights) != len(members):
            raise MedsiftError(
                f"{len(options.weights)} weights for {len(members)} members; give one per member"
            )
        w = np.asarray(options.weights, dtype=float)
        if (w < 0).any() or w.sum() <= 0:
            raise MedsiftError(f"weights must be non-negative and not all zero, got {options.weights}")
        return f1s, (w / w.sum()).tolist()
    if options.method == "weighted" and options.weights_from == "val_f1":
        return f1s, weights_from_scores(f1s).tolist()
    return f1s, None  # hard and soft votes weigh members equally unless weights are given


def _combine(
    probs: np.ndarray,
    options: EnsembleOptions,
    weights: list | None,
    groups: np.ndarray | list[str] | None = None,
    group_weights: dict[str, Any] | None = None,
    *,
    knows: list | None = None,
    stacker: dict[str, Any] | None = None,
    features: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """One probability per row. ``knows``: each member's languages (None = all); a restricted member is left
    out of rows in other languages. ``stacker``/``features``: the fitted stacking regression and the members'
    per-post features it reads."""
    if (group_weights is not None or stacker is not None or is_restricted(knows)) and groups is None:
        raise MedsiftError("internal error: this ensemble needs each row's language group")
    if group_weights is not None:
        return GroupWeights.from_dict(group_weights).combine(probs, groups)  # type: ignore[arg-type]
    known = known_mask(knows, groups) if is_restricted(knows) else None  # type: ignore[arg-type]
    if stacker is not None:
        model = Stacker.from_dict(stacker)
        names = [n.removeprefix("p:") for n in model.names if n.startswith("p:")]
        wanted = {
            n: (features or {})[n] for n in model.names if not n.startswith("p:") and n in (features or {})
        }
        missing = [n for n in model.names if not n.startswith("p:") and n not in wanted]
        if missing:
            raise MedsiftError(f"the stacker needs member features that were not given: {', '.join(missing)}")
        return model.apply(design_matrix(probs, names, known, wanted)[0])
    method = "soft" if options.method == "weighted" and weights is None else options.method
    w = None if weights is None else np.asarray(weights)
    if known is not None:
        return combine_known(probs, method, w, known, tie=options.tie)  # type: ignore[arg-type]
    return combine(probs, method, w, tie=options.tie)  # type: ignore[arg-type]


def _tuning_rows(members: list[Member], val: Rows, options: EnsembleOptions) -> tuple[Rows | None, str]:
    needs_tuning = options.thresholds != "global" or options.calibrate != "none"
    without = [m.name for m in members if m.calib is None]
    if not without:
        return _aligned(members, "calib"), "calib"
    if options.method == "stacking":
        raise MedsiftError(
            f"stacking is fit on the members' calib rows, and member(s) {', '.join(without)} have none "
            "(give them with val=PATH,calib=PATH or --calib-file)"
        )
    if not needs_tuning:
        return None, "none"
    if options.cross_fit:
        return val, "val (cross-fitted)"
    raise MedsiftError(
        f"member(s) {', '.join(without)} have no calib rows to tune thresholds/calibration on; give them "
        "(val=PATH,calib=PATH or --calib-file) or pass --cross-fit K to cross-fit on the val rows"
    )


def _ece_table(members: list[Member], rows: Rows, cals: list[Calibrator], label: str) -> dict[str, dict]:
    table = {}
    for j, member in enumerate(members):
        before = rows.probs[:, j]
        table[member.name] = {
            f"{label}_before": expected_calibration_error(rows.y, before),
            f"{label}_after": expected_calibration_error(rows.y, cals[j].apply(before)),
        }
    return table


def _fit(members: list[Member], options: EnsembleOptions) -> dict[str, Any]:
    """Fit weights, calibrators and the threshold policy; returns the body of ``ensemble.json``."""
    val = _aligned(members, "val")
    f1s, weights = _member_weights(members, val, options)
    tune, tuned_on = _tuning_rows(members, val, options)
    cals = [Calibrator("none")] * len(members)
    if tune is not None and options.calibrate != "none":
        cals = calibrate_members(tune.y, tune.probs, options.calibrate)  # type: ignore[arg-type]
    grid = np.asarray(options.grid if options.grid is not None else DEFAULT_GRID, dtype=float)
    tune_kwargs = dict(
        mode=options.thresholds,
        grid=grid,
        metric=options.metric,
        min_positives=options.min_positives,
        fallback=options.fallback,
        shrink=options.threshold_shrink,
    )
    out_of_fold = None
    group_weights = None
    stacking: dict[str, Any] | None = None
    knows = [m.languages for m in members]
    if options.method == "stacking":
        assert tune is not None  # _tuning_rows refuses stacking without calib rows
        stacking, policy = _fit_stacking(members, tune, options, tune_kwargs)
    elif options.weights_by == "language":
        if tune is None or tuned_on != "calib":
            raise MedsiftError(
                "weights per language are fit on the members' calib rows, and some member has none"
            )
        if options.method == "hard":
            raise MedsiftError("weights per language combine probabilities: use --method soft or weighted")
        group_weights = fit_group_weights(
            tune.y,
            _calibrated(tune.probs, cals),
            threshold_groups(tune.ids, tune.languages),
            [m.name for m in members],
            [m.languages for m in members],
            step=options.weight_step,
            shrink=options.weight_shrink,
            min_positives=options.min_positives,
            grid=grid,
            metric=options.metric,
        ).to_dict()
        weights = group_weights["pooled"]  # what the members table shows; each group has its own (report.md)
    if stacking is not None:
        pass  # its policy was tuned on the out-of-fold probabilities of the calib rows
    elif tune is None:
        policy = ThresholdPolicy(mode="global", fallback=0.5, fallback_rule="global")
    else:
        combined = _combine(
            _calibrated(tune.probs, cals),
            options,
            weights,
            threshold_groups(tune.ids, tune.languages),
            group_weights,
            knows=knows,
        )
        if tuned_on.startswith("val"):
            fit = cross_fit_thresholds(
                tune.y,
                combined,
                threshold_groups(tune.ids, tune.languages),
                options.cross_fit,
                options.cross_fit_seed,
                **tune_kwargs,
            )
            policy, out_of_fold = fit.policy, fit.score
        else:
            policy = tune_thresholds(
                tune.y, combined, threshold_groups(tune.ids, tune.languages), **tune_kwargs
            )  # type: ignore[arg-type]
        if group_weights is not None and options.thresholds != "global":
            _language_thresholds(
                policy,
                GroupWeights.from_dict(group_weights),
                tune,
                cals,
                grid,
                options.metric,
                options.fallback,
            )
    ece: dict[str, dict] = {m.name: {} for m in members}
    for rows, label in ((tune, "tuning_rows"), (val if tuned_on == "calib" else None, "val_rows")):
        if rows is not None:
            for name, values in _ece_table(members, rows, cals, label).items():
                ece[name].update(values)
    return {
        "format": ENSEMBLE_FORMAT,
        "method": options.method,
        "options": asdict(options),
        "members": [
            {**m.to_dict(), "val_f1_at_0.5": f1s[j], "weight": None if weights is None else weights[j]}
            for j, m in enumerate(members)
        ],
        "weights": weights,
        "group_weights": group_weights,
        "stacking": stacking,
        "calibrators": [asdict(c) for c in cals],
        "policy": policy.to_dict(),
        "rows_used": {
            "weights": {"split": "val", "rows": len(val.ids), "files": val.source},
            "calibration_and_thresholds": {
                "split": tuned_on,
                "rows": 0 if tune is None else len(tune.ids),
                "files": [] if tune is None else tune.source,
                "cross_fit_folds": options.cross_fit if tuned_on.startswith("val") else None,
                "out_of_fold_score": out_of_fold,
            },
        },
        "warnings": _warnings(tuned_on)
        + [
            w
            for m, c in zip(members, cals, strict=True)
            if c.method == "temperature" and (w := temperature_warning(c.temperature, m.name))
        ],
        "ece": ece,
    }


def _fit_stacking(
    members: list[Member], tune: Rows, options: EnsembleOptions, tune_kwargs: dict[str, Any]
) -> tuple[dict[str, Any], ThresholdPolicy]:
    """Cross-fit the stacking regression on the calib rows; thresholds are tuned on its out-of-fold output."""
    if options.weights_by != "none" or options.calibrate != "none" or options.weights is not None:
        raise MedsiftError(
            "--method stacking learns its own weights: leave --weights, --weights-by and --calibrate unset"
        )
    names = [m.name for m in members]
    unknown = sorted(set(options.stack_features or []) - set(names))
    if unknown:
        raise MedsiftError(
            f"--stack-features: no member named {', '.join(unknown)} (members: {', '.join(names)})"
        )
    wanted = {
        k: v for k, v in (tune.features or {}).items() if k.split(":", 1)[0] in (options.stack_features or [])
    }
    without = [n for n in options.stack_features or [] if not any(k.startswith(f"{n}:") for k in wanted)]
    if without:
        raise MedsiftError(
            f"--stack-features: member(s) {', '.join(without)} wrote no per-post features ({FEATURE_PREFIX}* "
            "columns in their probability files)"
        )
    groups = threshold_groups(tune.ids, tune.languages)
    known = known_mask([m.languages for m in members], groups)
    X, feature_names = design_matrix(tune.probs, names, known, wanted)
    fit = cross_fit_stacker(
        tune.y,
        X,
        feature_names,
        groups,
        folds=options.stack_folds,
        seed=options.cross_fit_seed,
        C=options.stack_c,
    )
    policy = tune_thresholds(tune.y, fit.out_of_fold, groups, **tune_kwargs)  # type: ignore[arg-type]
    labels = policy.apply(fit.out_of_fold, groups)
    info = {
        "model": fit.stacker.to_dict(),
        "folds": fit.folds,
        "fit_on": "calib",
        "out_of_fold_f1": score_labels(tune.y, labels),
        "coefficients": fit.stacker.coefficients(),
        "out_of_fold": fit.out_of_fold.tolist(),  # written to calib_probabilities.csv, then dropped
    }
    return info, policy


UNSEEN_GROUP = "\x00unseen"  # a group name no language has: rows scored as a language no member saw


def _language_thresholds(
    policy: ThresholdPolicy,
    weights: GroupWeights,
    tune: Rows,
    cals: list,
    grid: np.ndarray,
    metric: str,
    fallback: str,
) -> None:
    """Thresholds for the languages scored by another mix of members than the calib rows were.

    With weights per language, a language some restricted member knows but that has no threshold of its own (fr
    native posts when only translated CADEC fr rows were trained on) gets the pooled threshold of the calib rows
    scored with its own weights. A language no restricted member knows (ja, zh, fa) is scored by the members that
    know every language; with ``fallback: pooled`` its threshold is tuned on the calib rows scored that way. That
    was too high in leave-one-language-out runs (a model is less sure of a language it never saw: see
    docs/benchmarks.md), which is why ``ade-cpu-full`` keeps ``fallback: global`` (0.5) for them.
    """
    from medsift.decision.thresholds import search_threshold

    restricted = sorted({lang for known in weights.knows if known is not None for lang in known})
    if not tune.y.any() or not restricted:
        return  # every member knows every language: the pooled threshold already fits every group
    probs = _calibrated(tune.probs, cals)

    def pooled_as(group: str) -> float:
        combined = weights.combine(probs, [group] * len(tune.y))
        return search_threshold(tune.y, combined, grid, metric).threshold  # type: ignore[arg-type]

    if fallback == "pooled":
        policy.fallback = pooled_as(UNSEEN_GROUP)
        used = [n for n, w in zip(weights.members, weights.weights_for(UNSEEN_GROUP), strict=True) if w > 0]
        policy.notes.append(
            f"fallback: the pooled threshold of the calib rows scored as an unseen language is ({', '.join(used)})"
        )
    # A language some restricted member knows but that has no threshold of its own (fr native posts when only
    # translated CADEC fr rows were trained on) is scored with that language's weights: its threshold too.
    for lang in restricted:
        for group in (lang, f"{lang}{CADEC_SUFFIX}"):
            if group not in policy.thresholds:
                policy.thresholds[group] = pooled_as(group)
                policy.fallback_languages.setdefault(
                    group,
                    "no threshold of its own: the pooled threshold of the calib rows scored with its weights",
                )


def _warnings(tuned_on: str) -> list[str]:
    if tuned_on.startswith("val"):
        return [
            "NO CALIBRATION ROWS: calibrators and thresholds were fit on the VAL rows, which also chose the "
            "members' checkpoints. The thresholds were cross-fitted (the out-of-fold score is honest for the "
            "threshold step only); scores on val rows remain optimistic."
        ]
    return []


def _calibrated(probs: np.ndarray, cals: list[Calibrator]) -> np.ndarray:
    return np.column_stack([cal.apply(probs[:, j]) for j, cal in enumerate(cals)])


def _frame(rows: Rows, members: list[Member], spec: dict[str, Any]) -> tuple[pd.DataFrame, np.ndarray]:
    cals = [Calibrator(**c) for c in spec["calibrators"]]
    probs = _calibrated(rows.probs, cals)
    p = _combine(
        probs,
        EnsembleOptions(**spec["options"]),
        spec["weights"],
        threshold_groups(rows.ids, rows.languages),
        spec.get("group_weights"),
        **_spec_extras(spec, rows.features),
    )
    frame = pd.DataFrame({"id": rows.ids, "language": rows.languages, "p_ade": p, "label": rows.y})
    if rows.uids is not None:
        frame["uid"] = rows.uids
    for j, member in enumerate(members):
        frame[f"p_ade__{member.name}"] = probs[:, j]
    return frame, p


def build_ensemble(
    members: list[Member], out_dir: str | Path, options: EnsembleOptions, *, relative_members: bool = False
) -> dict[str, Any]:
    """Fit and write an ensemble run directory from ``members``; returns the ``ensemble.json`` content.

    ``relative_members`` records member paths relative to ``out_dir`` (members kept inside the ensemble's own
    folder, as ``medsift train`` of an ensemble config does): the folder can then be moved or copied whole.
    """
    from medsift.io import write_probabilities
    from medsift.io.atomic import atomic_write_text

    if not members:
        raise MedsiftError("an ensemble needs at least one member")
    for name, allowed in _CHOICES.items():
        if getattr(options, name) not in allowed:
            raise MedsiftError(f"unknown {name} {getattr(options, name)!r}; expected {' | '.join(allowed)}")
    out_dir = Path(out_dir)
    if (out_dir / "medsift_run.json").exists():
        raise MedsiftError("a finished run is already here; choose another output directory", file=out_dir)
    spec = _fit(members, options)
    out_of_fold = (spec.get("stacking") or {}).pop("out_of_fold", None)
    policy = ThresholdPolicy.from_dict(spec["policy"])
    val_frame, val_p = _frame(_aligned(members, "val"), members, spec)
    val_labels = policy.apply(val_p, threshold_groups(val_frame["id"], val_frame["language"]))
    spec["val_f1"] = score_labels(val_frame["label"].to_numpy(), val_labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_probabilities(out_dir / "val_probabilities.csv", val_frame)
    if all(m.calib is not None for m in members):
        calib_frame = _frame(_aligned(members, "calib"), members, spec)[0]
        if out_of_fold is not None:  # stacking: each calib row as scored by the folds that did not fit on it
            calib_frame["p_ade"] = out_of_fold
        write_probabilities(out_dir / "calib_probabilities.csv", calib_frame)
    write_json(out_dir / "thresholds.json", spec["policy"])
    if relative_members:
        spec["members"] = [_relative_paths(m, out_dir) for m in spec["members"]]
    write_json(out_dir / "ensemble.json", spec)
    atomic_write_text(out_dir / "report.md", ensemble_report(spec))
    RunManifest(
        kind="ade-ensemble",
        task="ade",
        extra={
            "method": options.method,
            "members": [m.name for m in members],
            "tuned_on": spec["rows_used"]["calibration_and_thresholds"]["split"],
            "warnings": spec["warnings"],
        },
    ).save(out_dir)
    return spec


_PATH_KEYS = ("path", "val_file", "calib_file")


def _relative_paths(member: dict[str, Any], root: Path) -> dict[str, Any]:
    import os

    out = dict(member)
    for key in _PATH_KEYS:
        if out.get(key):
            out[key] = os.path.relpath(Path(out[key]).resolve(), root.resolve())
    return out


def read_spec(run_dir: str | Path) -> dict[str, Any]:
    """``ensemble.json`` with every member path absolute (relative ones are relative to the ensemble folder)."""
    run_dir = Path(run_dir)
    spec = read_json(run_dir / "ensemble.json")
    for member in spec.get("members", []):
        for key in _PATH_KEYS:
            if member.get(key) and not Path(member[key]).is_absolute():
                member[key] = str((run_dir / member[key]).resolve())
    return spec


def load_spec(run_dir: str | Path) -> dict[str, Any]:
    """Read and check an ensemble's ``ensemble.json`` (member paths made absolute)."""
    run_dir = Path(run_dir)
    manifest = RunManifest.load(run_dir)
    if manifest.kind != "ade-ensemble":
        raise MedsiftError(f"expected an ADE ensemble run, found kind '{manifest.kind}'", file=run_dir)
    spec = read_spec(run_dir)
    if spec.get("format") != ENSEMBLE_FORMAT:
        raise MedsiftError(f"unknown ensemble format {spec.get('format')!r}", file=run_dir / "ensemble.json")
    return spec


def ensemble_probabilities(
    run_dir: str | Path,
    texts: list[str],
    languages: list[str],
    *,
    predictor: MemberPredictor | None = None,
    ids: list[str] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], ThresholdPolicy]:
    """Score posts with every member, calibrate, combine. Returns ``(p, calibrated member columns, policy)``.

    ``ids`` put CADEC rows in their own group (``<lang>_cadec``) for per-language member weights, as the
    thresholds do; without them every row is grouped by its language.
    """
    spec = load_spec(run_dir)
    predictor = predictor or MemberPredictor()
    columns = {m["name"]: predictor.predict(m, texts, languages) for m in spec["members"]}
    probs = np.column_stack([np.asarray(v, dtype=float) for v in columns.values()])
    if probs.shape[0] != len(texts):
        raise MedsiftError(f"internal error: members gave {probs.shape[0]} rows for {len(texts)} posts")
    groups = threshold_groups(ids, languages) if ids is not None else np.asarray(languages, dtype=object)
    p, probs = apply_spec(spec, probs, groups, features=predictor.member_features(spec["members"]))
    calibrated = {name: probs[:, j] for j, name in enumerate(columns)}
    return p, calibrated, ThresholdPolicy.from_dict(spec["policy"])


class EnsembleClassifier:
    """An ADE ensemble run behind a single classifier's ``predict``: every member's models load once (on the
    first call) and stay loaded; the result is an :class:`medsift.ade.predict.AdePrediction` whose per-member
    columns are the calibrated member probabilities."""

    def __init__(self, run_dir: str | Path, *, backend: str = "torch", quiet: bool = True):
        self.run_dir = Path(run_dir)
        self.members = MemberPredictor(quiet=quiet, backend=backend)

    def predict(
        self,
        texts: list[str],
        languages: list[str] | None = None,
        *,
        ids: list[str] | None = None,
        progress: bool = False,
        batch_tokens: int | None = None,
    ) -> Any:
        from medsift.ade.classifier import AdePrediction

        languages = list(languages) if languages is not None else [""] * len(texts)
        before = len(self.members.truncation)
        p, columns, policy = ensemble_probabilities(
            self.run_dir, list(texts), languages, predictor=self.members, ids=ids
        )
        groups = threshold_groups(ids, languages) if ids is not None else languages
        thresholds = policy.thresholds_for(groups)
        truncated = sum(t["posts"] for t in self.members.truncation[before:])
        return AdePrediction(p, columns, (p >= thresholds).astype(int), thresholds, truncated)


def apply_spec(
    spec: dict[str, Any],
    member_probs: np.ndarray,
    groups: np.ndarray | list[str] | None = None,
    *,
    features: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrate and combine raw member probabilities ``(n_rows, n_members)`` as ``ensemble.json`` says.

    ``groups`` (each row's threshold group) are needed when the members are weighed per language, when some
    member is restricted to some languages, and for stacking; ``features`` (``"<member>:<feature>"`` ->
    values) when the stacker reads per-post member features.
    Returns ``(combined p, calibrated member matrix)``; cut ``p`` with the spec's policy.
    """
    probs = _calibrated(np.asarray(member_probs, dtype=float), [Calibrator(**c) for c in spec["calibrators"]])
    combined = _combine(
        probs,
        EnsembleOptions(**spec["options"]),
        spec["weights"],
        groups,
        spec.get("group_weights"),
        **_spec_extras(spec, features),
    )
    return combined, probs


def _spec_extras(spec: dict[str, Any], features: dict[str, np.ndarray] | None) -> dict[str, Any]:
    """The members' languages and the stacker of an ``ensemble.json``, as :func:`_combine` takes them."""
    stacking = spec.get("stacking") or {}
    return {
        "knows": [m.get("languages") for m in spec["members"]],
        "stacker": stacking.get("model"),
        "features": features,
    }


def file_member_names(run_dir: str | Path) -> list[str]:
    """Names of the probability-file members of an ensemble, nested ensembles included."""
    names = []
    for member in load_spec(run_dir)["members"]:
        if member["kind"] == FILES_KIND:
            names.append(member["name"])
        elif member["kind"] == "ade-ensemble":
            names += file_member_names(member["path"])
    return names


def _check_member_names(run_dir: Path, given: dict[str, Path]) -> None:
    """Refuse a ``--member-probabilities`` name that is no probability-file member (a typo, say), up front."""
    known = file_member_names(run_dir)
    for name in given:
        if name not in known:
            raise MedsiftError(
                f"--member-probabilities {name}: the ensemble has no probability-file member of that name "
                f"(its probability-file members: {', '.join(known) or 'none'})",
                file=run_dir,
            )


def applied_thresholds(policy: ThresholdPolicy, groups: list[str] | np.ndarray) -> dict[str, Any]:
    """What the policy did to rows of these threshold ``groups`` (``<lang>`` or ``<lang>_cadec``).

    ``thresholds`` maps each group present to the threshold it got; ``fallback_rows`` counts rows whose
    group had no per-language threshold of its own (per_language mode only: in the other modes one
    threshold serves every row by design) and ``fallback_groups`` names those groups.
    """
    groups = [str(g) for g in groups]
    fell_back = (
        sorted({g for g in groups if g not in policy.thresholds}) if policy.mode == "per_language" else []
    )
    return {
        "thresholds": {g: policy.threshold_for(g) for g in sorted(set(groups))},
        "fallback_rows": sum(g in fell_back for g in groups),
        "fallback_groups": fell_back,
    }


def predict_file(
    run_dir: Path,
    input_path: Path,
    output: Path,
    *,
    probabilities: Path | None = None,
    quiet: bool = False,
    member_probabilities: dict[str, Path] | None = None,
    backend: str = "torch",
) -> dict[str, Any]:
    """Predict every row of ``input_path`` with an ensemble run; write the submission (and probabilities).

    Rows of a language the thresholds were not tuned for (e.g. Farsi) get the policy's fallback; CADEC rows
    are cut with their ``<lang>_cadec`` threshold, as they are scored. ``member_probabilities`` gives the
    probabilities of members that are probability files (an outside system), keyed by member name, for the
    rows of this input. Returns ``rows``, ``positives``, ``thresholds`` and ``fallback_rows`` (per threshold
    group, see :func:`applied_thresholds`), ``truncation`` (per classifier member) and, for labelled input,
    ``scores``. ``backend="onnx"`` runs the classifier members' exported models (``medsift export``).
    """
    from medsift.io import read_ade_any, write_ade_submission, write_probabilities
    from medsift.io.ade import count_blank
    from medsift.scoring import score_ade

    rows = read_ade_any(input_path, labelled=None)
    languages = rows["language"].fillna("").astype(str).tolist()
    _check_member_names(run_dir, member_probabilities or {})
    given_features: dict[str, dict[str, np.ndarray]] = {}
    given = load_given_members(member_probabilities, rows, input_path, given_features)
    predictor = MemberPredictor(quiet=quiet, given=given, backend=backend)
    predictor.features.update(given_features)
    p, members, policy = ensemble_probabilities(
        run_dir, rows["text"].tolist(), languages, predictor=predictor, ids=rows["id"].astype(str).tolist()
    )
    groups = threshold_groups(rows["id"].astype(str), languages)
    labels = policy.apply(p, groups)
    write_ade_submission(output, rows["id"].tolist(), labels.tolist())
    labelled = bool(rows["label"].notna().all())
    if probabilities is not None:
        frame = pd.DataFrame({"id": rows["id"].astype(str), "language": languages, "p_ade": p})
        if labelled:
            frame["label"] = rows["label"].astype(int).to_numpy()
        for name, values in members.items():
            frame[f"p_ade__{name}"] = values
        write_probabilities(probabilities, frame)
    result: dict[str, Any] = {
        "rows": len(rows),
        "positives": int(labels.sum()),
        **applied_thresholds(policy, groups),
        "truncation": predictor.truncation,
        "blank_posts": count_blank(rows["text"]),  # predicted like any post; predict says how many
    }
    if labelled:
        gold = rows[["id", "label", "language"]]
        result["scores"] = score_ade(
            gold, pd.DataFrame({"id": rows["id"], "predicted_label": labels})
        ).to_dict()
    return result
