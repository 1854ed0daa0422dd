"""Runner types: the plugins that turn an action execution into work."""
