"""Users, tokens and API keys."""
