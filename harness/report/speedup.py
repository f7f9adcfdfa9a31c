"""KSH12 Fig. 1's speedup claim: the training images a run saw until its running training error first fell to a
threshold, read from its `schema.TRAIN_ERR` curve. Pure."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from variants import Claim

SPEEDUP_WINDOW = 5  # curve points in the running mean (engine.curve_every = 10 steps each: 50 batches)


def images_to_threshold(
    curve: Sequence[tuple[int, float]], threshold: float, window: int = SPEEDUP_WINDOW
) -> tuple[int, bool] | None:
    """Training images seen when the running training error first falls to `threshold` (%), and whether it did.

    `curve` is a run's schema.TRAIN_ERR series: (images seen, error % over the last few batches), images ascending.
    The running error is the mean of the last `window` points (a full window; one point of 10 batches is too
    noisy to cross a threshold on); the images are those of the window's last point. A run that never reaches it is
    censored: (images of its last point, False), a lower bound. None: no curve (or shorter than one window)."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    points = sorted(curve)
    if len(points) < window:
        return None
    for i in range(window - 1, len(points)):
        if statistics.fmean(v for _, v in points[i - window + 1 : i + 1]) <= threshold:
            return points[i][0], True
    return points[-1][0], False


def speedup_variants(all_claims: Sequence[Claim]) -> set[str]:
    """The variants whose train_err curves the report reads: both sides of each speedup claim (KSH12 Fig. 1)."""
    return {name for c in all_claims if c.kind == "speedup" for name in (c.variant, c.baseline)}


def speedup_threshold(claim: Claim, proxy: bool) -> float | None:
    """The training error (%) a speedup claim is measured at: `proxy_threshold` on proxy data, else `threshold`."""
    return claim.proxy_threshold if proxy else claim.threshold
