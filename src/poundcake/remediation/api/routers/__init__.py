"""poundcake-api's own routers (intake, alerts, requests, CABs); :data:`ROUTERS` in
:mod:`poundcake.remediation.api.app` lists them, with the web UI's, and their prefixes."""
