"""The ``http-request`` runner, guarded against requests to internal addresses (SSRF)."""
