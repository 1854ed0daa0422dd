"""Trigger types, triggers and trigger instances: the events rules react to."""
