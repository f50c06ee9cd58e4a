"""Input checks shared by the decision modules: every public function validates before it computes,
so a bad array fails with a one-line :class:`MedsiftError` instead of a silent NaN downstream."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from medsift.errors import MedsiftError


def prob_vector(p: npt.ArrayLike, name: str = "p") -> np.ndarray:
    """Return ``p`` as a 1-D float array, refusing NaN and values outside [0, 1]."""
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1:
        raise MedsiftError(f"{name} must be one probability per row (1-D), got shape {arr.shape}")
    _check_range(arr, name)
    return arr


def prob_matrix(probs: npt.ArrayLike, name: str = "probs") -> np.ndarray:
    """Return ``probs`` as a 2-D (n_rows, n_members) float array with values in [0, 1]."""
    arr = np.asarray(probs, dtype=float)
    if arr.ndim != 2:
        raise MedsiftError(f"{name} must have shape (n_rows, n_members), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise MedsiftError(f"{name} has no members (0 columns)")
    _check_range(arr, name)
    return arr


def _check_range(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        raise MedsiftError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} NaN or infinite values")
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise MedsiftError(f"{name} must lie in [0, 1], found values in [{arr.min():g}, {arr.max():g}]")


def binary_labels(y: npt.ArrayLike, n: int, name: str = "y") -> np.ndarray:
    """Return ``y`` as an int array of 0/1 of length ``n``."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise MedsiftError(f"{name} must have one label per row ({n}), got shape {arr.shape}")
    try:
        values = arr.astype(float)
    except (TypeError, ValueError) as exc:
        raise MedsiftError(f"{name} must hold labels 0/1: {exc}") from None
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        raise MedsiftError(
            f"{name} must hold labels 0/1 only; {int(bad.sum())} rows do not (e.g. {arr[bad][0]!r})"
        )
    return values.astype(int)


def language_vector(languages: npt.ArrayLike | Sequence[str], n: int) -> np.ndarray:
    """Return languages as an object array of strings of length ``n``."""
    arr = np.asarray(languages, dtype=object)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise MedsiftError(f"languages must have one entry per row ({n}), got shape {arr.shape}")
    return np.array([str(x) for x in arr], dtype=object)
