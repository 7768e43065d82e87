"""rollout: feature-flag phased rollouts with frozen bucketing and an automatic kill switch."""

from rollout.sdk.client import FlagHandle, RolloutClient

__all__ = ["FlagHandle", "RolloutClient"]
