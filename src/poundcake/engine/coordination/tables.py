"""The coordination backend's own tables (group membership) in the engine database: a module of
its own, so what only needs their names (the database grants) does not import tooz."""

TABLES = ("coordination_groups", "coordination_members")
