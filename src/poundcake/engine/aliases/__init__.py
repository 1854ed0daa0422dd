"""Action aliases: chat-style commands that map to an action and its parameters."""
