"""OpenFeature for rollout: ``from rollout.openfeature import RolloutProvider``.

Needs the optional extra ``rollout[openfeature]`` (the ``openfeature-sdk`` package).
"""

from rollout.openfeature.provider import RolloutProvider

__all__ = ["RolloutProvider"]
