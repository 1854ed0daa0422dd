"""After and around a CAB's run: Alertmanager silences while it runs, and verification that
the alert resolved after it succeeded (issue 21's run safety)."""
