"""Orquesta workflows: the definition language, its expressions and the conductor that runs them."""
