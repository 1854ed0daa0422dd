"""Sensor types from packs (registered for their trigger types)."""
