"""Intake: Alertmanager webhooks, request IDs and the stored API calls."""
