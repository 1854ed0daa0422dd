"""The operators' web UI: its services (sessions, dashboard figures, lists, the CAB match test)
in this package, its routes in :mod:`poundcake.remediation.ui.routes`, its assets in ``static/``.

Only the routes import fastapi; the services take a session or the engine's API.
"""
