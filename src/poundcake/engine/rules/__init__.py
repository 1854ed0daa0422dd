"""Rules and rule enforcements: if a trigger matches the criteria, run an action."""
