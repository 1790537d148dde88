"""Per-agent behavioural baselines: rate, novelty, time, sequence, volume, multivariate, peer.

``BaselineDetector`` (in :mod:`.composite`) is the one object the stream core uses; each baseline
lives in its own module and works on the compact per-agent state of :mod:`.state`.
"""

from detectors.baselines.composite import ALL_BASELINES, BaselineDetector

__all__ = ["ALL_BASELINES", "BaselineDetector"]
