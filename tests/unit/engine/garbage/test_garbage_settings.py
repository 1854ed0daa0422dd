from __future__ import annotations

from pathlib import Path

from poundcake.config import load_st2_config
from poundcake.engine.garbage.process import GarbageCollectorSettings
from poundcake.engine.garbage.service import (
    purge_execution_output,
    purge_executions,
    purge_trigger_instances,
)


def settings_from(tmp_path: Path, section: str) -> GarbageCollectorSettings:
    path = tmp_path / "st2.conf"
    path.write_text(f"[database]\nbackend = sqlite\ndb_name = {tmp_path / 'e.db'}\n\n{section}")
    return GarbageCollectorSettings.from_section(load_st2_config(path).garbagecollector)


def test_defaults_match_stackstorm(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, "")
    assert settings == GarbageCollectorSettings()
    assert settings.collection_interval == 600
    assert settings.sleep_delay == 2
    assert settings.action_executions_ttl is None
    assert settings.action_executions_output_ttl == 7
    assert settings.trigger_instances_ttl is None
    assert settings.purge_inquiries is False
    assert [name for name, _, _ in settings.kinds()] == ["execution output"]


def test_every_setting_is_read_from_the_section(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        "[garbagecollector]\ncollection_interval = 60\nsleep_delay = 0.5\nbatch_size = 50\n"
        "action_executions_ttl = 30\naction_executions_output_ttl = 2\n"
        "trigger_instances_ttl = 14\npurge_inquiries = true\n",
    )
    assert settings == GarbageCollectorSettings(
        collection_interval=60,
        sleep_delay=0.5,
        batch_size=50,
        action_executions_ttl=30,
        action_executions_output_ttl=2,
        trigger_instances_ttl=14,
        purge_inquiries=True,
    )
    assert settings.kinds() == [
        ("executions", 30, purge_executions),
        ("execution output", 2, purge_execution_output),
        ("trigger instances", 14, purge_trigger_instances),
    ]
