"""``report.md`` of an ADE ensemble: members and weights, thresholds per language and their source, ECE, rows used."""

from __future__ import annotations

from typing import Any

from medsift.decision.thresholds import ThresholdPolicy


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _group_weight_lines(weights: dict[str, Any] | None) -> list[str]:
    """The per-language member weights (``--weights-by language``), or nothing."""
    if not weights:
        return []
    names = weights["members"]
    knows = [
        f"`{n}` knows {', '.join(k)}" if k is not None else f"`{n}` knows every language"
        for n, k in zip(names, weights["knows"], strict=True)
    ]
    lines = [
        "",
        "## Weights per language",
        "",
        f"Fit on the calib rows, shrunk toward the pooled weights with K = {weights['shrink']:g}; {'; '.join(knows)}.",
        "",
        "| group | " + " | ".join(names) + " | calib positives | before shrinking |",
        "|---|" + "---|" * (len(names) + 2),
        "| pooled | " + " | ".join(f"{w:.2f}" for w in weights["pooled"]) + " | | |",
    ]
    for group, w in weights["groups"].items():
        raw = ", ".join(f"{v:.2f}" for v in weights["raw"][group])
        lines.append(
            f"| {group} | " + " | ".join(f"{v:.2f}" for v in w) + f" | {weights['support'][group]} | {raw} |"
        )
    lines.append("| any other language | the pooled weights of the members that know it | | |")
    return lines


def _stacking_lines(stacking: dict[str, Any] | None) -> list[str]:
    """The stacking regression's coefficients and its honest (out-of-fold) calib score, or nothing."""
    if not stacking:
        return []
    lines = [
        "",
        "## Stacking",
        "",
        f"A logistic regression fit on the {stacking['fit_on']} rows only, cross-fitted over {stacking['folds']} "
        f"folds: each calib row is scored by the folds that did not fit on it, and the thresholds are tuned on "
        f"those out-of-fold probabilities. Out-of-fold calib F1 (after thresholds, the thresholds themselves "
        f"tuned on these rows): {stacking['out_of_fold_f1']:.4f}. The model kept is fit on every calib row.",
        "",
        "Coefficients are log-odds per standard deviation of the feature (`p:<member>` is the member's logit; "
        "`<member>:<feature>` a per-post feature):",
        "",
        "| feature | coefficient | odds ratio |",
        "|---|---|---|",
    ]
    lines += [
        f"| {c['feature']} | {c['coefficient']:+.4f} | {c['odds_ratio']:.3f} |"
        for c in stacking["coefficients"]
    ]
    lines.append(f"| (intercept) | {stacking['model']['intercept']:+.4f} | |")
    return lines


def ensemble_report(spec: dict[str, Any]) -> str:
    """``report.md``: members and weights, thresholds per language and the fallback, ECE, rows used."""
    policy = ThresholdPolicy.from_dict(spec["policy"])
    used = spec["rows_used"]
    tune = used["calibration_and_thresholds"]
    lines = [f"# ADE ensemble ({spec['method']} vote)", ""]
    if spec["method"] == "hard":
        tie = spec["options"].get("tie", "positive")
        lines += [f"A row with exactly half the votes (a tie) is resolved as `{tie}`.", ""]
    lines += [f"> **{w}**" for w in spec["warnings"]] + ([""] if spec["warnings"] else [])
    lines += [
        "## Members",
        "",
        "| member | kind | val F1 @0.5 | weight | calibrator |",
        "|---|---|---|---|---|",
    ]
    for member, cal in zip(spec["members"], spec["calibrators"], strict=True):
        shown = {"none": "none", "temperature": f"T={cal['temperature']:.3f}"}.get(
            cal["method"], f"a={cal['a']:.3f} b={cal['b']:.3f}"
        )
        weight = "equal" if member["weight"] is None else f"{member['weight']:.3f}"
        weight = "learned (stacking)" if spec["method"] == "stacking" else weight
        name = member["name"] + (
            f" (only {', '.join(member['languages'])})" if member.get("languages") else ""
        )
        lines.append(f"| {name} | {member['kind']} | {member['val_f1_at_0.5']:.4f} | {weight} | {shown} |")
    lines += _group_weight_lines(spec.get("group_weights"))
    lines += _stacking_lines(spec.get("stacking"))
    lines += [
        "",
        "## Thresholds",
        "",
        f"mode `{policy.mode}`, metric `{policy.metric}`, min positives {policy.min_positives}"
        + (f", shrunk toward the pooled threshold with K = {policy.shrink:g}" if policy.shrink else ""),
        "",
        "| language | threshold | source |",
        "|---|---|---|",
    ]
    for lang in sorted(set(policy.counts) | set(policy.thresholds)):
        source = policy.fallback_languages.get(lang, "fallback")
        if lang in policy.thresholds and lang not in policy.fallback_languages:
            source = "tuned"
        if lang in policy.raw_thresholds:
            source += f" ({policy.raw_thresholds[lang]:.2f} before shrinking)"
        lines.append(f"| {lang} | {policy.threshold_for(lang):.2f} | {source} |")
    lines += [
        f"| any other language (e.g. fa) | {policy.fallback:.2f} | fallback rule `{policy.fallback_rule}` |",
        "",
        "Fallback rules: `mean` = mean of the tuned per-language thresholds (the papers' rule); `pooled` = the "
        "threshold optimal on all tuning rows pooled (what pooled F1 rewards); `global` = 0.5.",
        "",
        "## Calibration (expected calibration error, 10 bins)",
        "",
        "| member | tuning rows before | after | val rows before | after |",
        "|---|---|---|---|---|",
    ]
    for name, e in spec["ece"].items():
        keys = ("tuning_rows_before", "tuning_rows_after", "val_rows_before", "val_rows_after")
        lines.append(f"| {name} | " + " | ".join(_fmt(e.get(k)) for k in keys) + " |")
    lines += [
        "",
        "## Rows used",
        "",
        f"- member weights (val F1 at 0.5): {used['weights']['rows']} `val` rows "
        "(they chose the checkpoints; never used for thresholds)",
        f"- calibrators and thresholds: {tune['rows']} rows of split `{tune['split']}`"
        + (
            f", {tune['cross_fit_folds']}-fold cross-fitted, out-of-fold score {_fmt(tune['out_of_fold_score'])}"
            if tune["cross_fit_folds"]
            else ""
        ),
        *[f"  - `{f}`" for f in dict.fromkeys(tune["files"])],
        f"- ensemble F1 on val rows with these thresholds: {_fmt(spec.get('val_f1'))}",
        "",
    ]
    return "\n".join(lines)
