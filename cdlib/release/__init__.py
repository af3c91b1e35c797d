"""Release strategies: blue/green, canary, rolling, immutable ones over Auto Scaling
groups; lock, history, gates, analysis.

Create a strategy in a playbook (``cdlib run`` runs it with the plays, in order) or call
its :meth:`~cdlib.release.strategy.Strategy.run`.
"""

from cdlib.release.alarms import AlarmFired
from cdlib.release.analysis import Analysis, Measurement, Thresholds, measure
from cdlib.release.asg import AsgBlueGreen, AsgCanary
from cdlib.release.bluegreen import BlueGreen
from cdlib.release.canary import Canary, CanaryStep
from cdlib.release.flagcanary import FlagCanary
from cdlib.release.gates import Aborted, Gate
from cdlib.release.history import History, ReleaseRecord, StepRecord
from cdlib.release.hooks import HookEvent, Hooks
from cdlib.release.interrupt import Interrupted
from cdlib.release.lock import LockHeld, ReleaseLock, break_lock
from cdlib.release.ops import rollback, signal, status
from cdlib.release.rolling import Rolling
from cdlib.release.routers import (
    AutoScalingSpec,
    ElbV2Spec,
    HAProxySpec,
    LocalHAProxySpec,
    RouterSpec,
)
from cdlib.release.strategy import DeployTarget, ReleaseFailed, Strategy

__all__ = [
    "Aborted",
    "AlarmFired",
    "Analysis",
    "AsgBlueGreen",
    "AsgCanary",
    "AutoScalingSpec",
    "BlueGreen",
    "Canary",
    "CanaryStep",
    "DeployTarget",
    "ElbV2Spec",
    "FlagCanary",
    "Gate",
    "HAProxySpec",
    "History",
    "HookEvent",
    "Hooks",
    "Interrupted",
    "LocalHAProxySpec",
    "LockHeld",
    "Measurement",
    "ReleaseFailed",
    "ReleaseLock",
    "ReleaseRecord",
    "Rolling",
    "RouterSpec",
    "StepRecord",
    "Strategy",
    "Thresholds",
    "break_lock",
    "measure",
    "rollback",
    "signal",
    "status",
]
