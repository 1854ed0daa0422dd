"""The operators' web UI, server side: sessions, dashboard figures, lists and the CAB match test.

No fastapi here: the routes in :mod:`poundcake.remediation.api.routers` (``ui_*``) call these
services.
"""
