"""Actions: what can be executed, with its runner and parameter schema."""
