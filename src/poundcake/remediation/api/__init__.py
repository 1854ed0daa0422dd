"""poundcake-api: the HTTP application (Alertmanager intake, request ids, API call records).

Built by :func:`poundcake.remediation.api.app.create_app`; routers live in
:mod:`poundcake.remediation.api.routers`.
"""
