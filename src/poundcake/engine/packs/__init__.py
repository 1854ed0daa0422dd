"""Packs: StackStorm's unit of content (actions, rules, trigger types, configs) on disk."""
