"""Engine databases for datastore tests: a scratch MariaDB database or an SQLite file."""

from __future__ import annotations

from pathlib import Path

from poundcake.config import St2Config, load_st2_config
from poundcake.db.migrate import setup_engine_schema
from tests.integration.support.mariadb import ADMIN_HOST, ADMIN_PASSWORD, ADMIN_PORT, ADMIN_USER


def write_st2_conf(directory: Path, *, database: str | None, extra: str = "") -> Path:
    """Write st2.conf for MariaDB ``database``, or for an SQLite file when ``database`` is None."""
    if database is None:
        section = f"[database]\nbackend = sqlite\ndb_name = {directory / 'engine.sqlite3'}\n"
    else:
        section = (
            f"[database]\nbackend = mysql\nhost = {ADMIN_HOST}\nport = {ADMIN_PORT}\n"
            f"username = {ADMIN_USER}\npassword = {ADMIN_PASSWORD}\ndb_name = {database}\n"
        )
    path = directory / "st2.conf"
    path.write_text(
        f"{section}\n[system]\ndata_dir = {directory / 'data'}\n\n"
        f"[keyvalue]\nencryption_key_path = {directory / 'keys' / 'datastore.key'}\n{extra}"
    )
    return path


def engine_config(directory: Path, *, database: str | None) -> St2Config:
    """Write st2.conf, create the engine schema and return the configuration."""
    config = load_st2_config(write_st2_conf(directory, database=database))
    setup_engine_schema(config)
    return config
