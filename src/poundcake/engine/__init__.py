"""The StackStorm-compatible automation engine whose state lives in MariaDB (or SQLite)."""
