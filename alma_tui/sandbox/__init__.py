"""Run untrusted memory designs in a separate, limited process (see runner and worker)."""

from alma_tui.sandbox.detect import Isolation, SandboxUnavailable, describe, probe, require
from alma_tui.sandbox.runner import (
    DesignFailure,
    SandboxedDesign,
    SandboxLimits,
    scrub_env,
    validate_design,
)

__all__ = [
    "DesignFailure",
    "Isolation",
    "SandboxLimits",
    "SandboxUnavailable",
    "SandboxedDesign",
    "describe",
    "probe",
    "require",
    "scrub_env",
    "validate_design",
]
