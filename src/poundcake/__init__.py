"""PoundCake: alert-driven auto-remediation on a StackStorm-compatible engine backed by MariaDB."""

__version__ = "0.1.0"
