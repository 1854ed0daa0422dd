"""Database access shared by the engine and PoundCake: engines, sessions, types, migrations."""
