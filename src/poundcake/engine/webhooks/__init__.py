"""Webhooks: URLs under /v1/webhooks that turn HTTP requests into trigger instances."""
