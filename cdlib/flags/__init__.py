"""Feature toggles in flagd's format, evaluated by flagd's reference evaluator.

cdlib manages flag files (validate, change, write atomically, audit, lint) and
leaves evaluation to ``openfeature-flagd-core``; applications read the files
through OpenFeature's ``openfeature-provider-flagd`` in file mode, or flags kept
in SSM Parameter Store through :class:`SSMFlagProvider`. See docs/flags.md.
"""

from cdlib.flags.audit import AuditEntry, AuditLog, current_actor
from cdlib.flags.document import FlagDocument, load_document, parse_document
from cdlib.flags.errors import (
    FlagChangeError,
    FlagFileError,
    FlagsError,
    FlagSourceError,
    FlagValidationError,
    Problem,
    UnknownFlagError,
)
from cdlib.flags.evaluate import Evaluation, FlagEvaluator, evaluate
from cdlib.flags.lint import lint_document
from cdlib.flags.manage import (
    ChangeResult,
    PartialChangeError,
    change_flag,
    kill,
    ramp,
    set_flag,
)
from cdlib.flags.mutate import (
    FlagChange,
    kill_switch,
    rollout_weights,
    set_default_variant,
    set_rollout,
    set_state,
)
from cdlib.flags.stores import FlagStore, HostFileStore, LocalFileStore, SSMParameterStore
from cdlib.flags.validate import check_document, validate_document

__all__ = [
    "AuditEntry",
    "AuditLog",
    "ChangeResult",
    "Evaluation",
    "FlagChange",
    "FlagChangeError",
    "FlagDocument",
    "FlagEvaluator",
    "FlagFileError",
    "FlagSourceError",
    "FlagStore",
    "FlagValidationError",
    "FlagsError",
    "HostFileStore",
    "LocalFileStore",
    "PartialChangeError",
    "Problem",
    "SSMParameterStore",
    "UnknownFlagError",
    "change_flag",
    "check_document",
    "current_actor",
    "evaluate",
    "kill",
    "kill_switch",
    "lint_document",
    "load_document",
    "parse_document",
    "ramp",
    "rollout_weights",
    "set_default_variant",
    "set_flag",
    "set_rollout",
    "set_state",
    "validate_document",
]
