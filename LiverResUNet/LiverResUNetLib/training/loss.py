"""Soft Dice + cross-entropy: cross-entropy learns every pixel, Dice keeps small tumors from being ignored.

The Dice terms are computed on the two regions the project measures: the liver as an organ (labels 1 and 2,
whose probability is ``1 - p(background)``) and the tumor (label 2). They are "batch Dice" as in nnU-Net:
sums run over the whole batch, so a batch with a tiny tumor on one slice still gives a stable gradient and
slices without tumor do not contribute a meaningless 0/0.
"""

import torch
import torch.nn.functional as F
from torch import nn


class DiceCrossEntropyLoss(nn.Module):
    """``dice_weight * (1 - mean region Dice) + cross_entropy_weight * cross-entropy``.

    Args:
        dice_weight: weight of the soft Dice term.
        cross_entropy_weight: weight of the pixel-wise cross-entropy.
        smooth: added to numerator and denominator; keeps an empty region's Dice defined.
    """

    def __init__(self, dice_weight: float = 1.0, cross_entropy_weight: float = 1.0, smooth: float = 1.0) -> None:
        super().__init__()
        self.dice_weight, self.cross_entropy_weight, self.smooth = dice_weight, cross_entropy_weight, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``logits``: ``[batch, 3, rows, columns]``; ``target``: ``[batch, rows, columns]`` labels 0/1/2."""
        loss = logits.new_zeros(())
        if self.cross_entropy_weight:
            loss = loss + self.cross_entropy_weight * F.cross_entropy(logits, target)
        if self.dice_weight:
            probabilities = torch.softmax(logits.float(), dim=1)
            regions = (1 - probabilities[:, 0], probabilities[:, 2])
            references = ((target > 0).float(), (target == 2).float())
            dice = [self._soft_dice(region, reference) for region, reference in zip(regions, references)]
            loss = loss + self.dice_weight * (1 - torch.stack(dice).mean())
        return loss

    def _soft_dice(self, prediction: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        intersection = (prediction * reference).sum()
        return (2 * intersection + self.smooth) / (prediction.sum() + reference.sum() + self.smooth)
