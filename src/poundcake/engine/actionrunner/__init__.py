"""The action runner: claims scheduled work, runs it through a runner plugin, records the end."""
