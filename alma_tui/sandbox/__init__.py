"""Run untrusted memory designs in a separate, limited process (see runner and worker)."""

from alma_tui.sandbox.runner import (
    DesignFailure,
    SandboxedDesign,
    SandboxLimits,
    scrub_env,
    validate_design,
)

__all__ = ["DesignFailure", "SandboxLimits", "SandboxedDesign", "scrub_env", "validate_design"]
