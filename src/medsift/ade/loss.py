"""Losses for the binary ADE classifier.

Focal loss (Lin et al., 2017) as the Gladiators system used it: ``FL = -alpha_t (1 - p_t)^gamma log p_t``
with ``alpha_t = alpha`` for the positive class and ``1 - alpha`` for the negative class. With
``gamma = 0`` and ``alpha = None`` it is exactly cross-entropy (a test checks it).

Class weights ``[w_neg, w_pos]`` follow ``torch.nn.functional.cross_entropy``'s convention in both losses:
each row's loss is multiplied by the weight of its gold class and the batch loss is the weighted mean
``sum(w_y * loss) / sum(w_y)``, so focal loss with ``gamma = 0``, ``alpha = None`` and class weights is
exactly weighted cross-entropy too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(
    logits: torch.Tensor,  # (batch, 2)
    labels: torch.Tensor,  # (batch,)
    *,
    alpha: float | None = 0.75,
    gamma: float = 2.0,
    class_weights: torch.Tensor | None = None,  # (2,)
) -> torch.Tensor:
    log_p = F.log_softmax(logits.float(), dim=-1)  # (batch, 2)
    log_pt = log_p.gather(1, labels.unsqueeze(1)).squeeze(1)  # (batch,)
    pt = log_pt.exp()
    loss = -((1.0 - pt) ** gamma) * log_pt
    if alpha is not None:
        alpha_t = torch.where(labels == 1, torch.full_like(pt, alpha), torch.full_like(pt, 1.0 - alpha))
        loss = alpha_t * loss
    if class_weights is not None:
        w = class_weights.to(loss.device, torch.float32)[labels]
        return (w * loss).sum() / w.sum()
    return loss.mean()


def classification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    name: str,
    alpha: float | None,
    gamma: float,
    class_weights: list[float] | None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The configured loss: ``focal`` or ``ce`` (cross-entropy, optionally label-smoothed), class-weighted."""
    weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
    if name == "focal":
        return focal_loss(logits, labels, alpha=alpha, gamma=gamma, class_weights=weights)
    return F.cross_entropy(
        logits.float(),
        labels,
        weight=None if weights is None else weights.to(logits.device),
        label_smoothing=label_smoothing,
    )
