"""Installing packs from local directories, removing them, registering them over the API's
service and setting pack configs, on SQLite and on the real MariaDB."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import St2Config, load_st2_config
from poundcake.db.base import Base
from poundcake.db.engine import make_st2_engine
from poundcake.db.migrate import setup_engine_schema
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.models import (
    ActionAliasDB,
    ActionDB,
    ConfigDB,
    ConfigSchemaDB,
    PackDB,
    PolicyDB,
    RuleDB,
    SensorTypeDB,
    TriggerDB,
    TriggerTypeDB,
)
from poundcake.engine.packs.configs import set_config
from poundcake.engine.packs.install import PackOperationReport, install_packs
from poundcake.engine.packs.locations import ContentLocations, content_locations
from poundcake.engine.packs.registration import register_packs
from poundcake.engine.packs.removal import uninstall_packs
from poundcake.engine.triggers.service import BUILTIN_TRIGGER_TYPES
from poundcake.exceptions import NotFoundError, ValidationError
from tests.paths import FIXTURE_PACKS

MONITORING = FIXTURE_PACKS / "good" / "monitoring"
CHATTY = MONITORING.parents[1] / "aliases" / "chatty"
PACK_TABLES: tuple[type[Base], ...] = (
    ActionDB,
    ActionAliasDB,
    RuleDB,
    PolicyDB,
    SensorTypeDB,
    ConfigSchemaDB,
    ConfigDB,
)


@dataclass
class Target:
    config: St2Config
    factory: sessionmaker[Session]
    packs_dir: Path
    sources: Path

    @property
    def locations(self) -> ContentLocations:
        return content_locations(self.config)

    def install(self, *sources: str | Path, **options: Any) -> PackOperationReport:
        with unit_of_work(self.factory) as session:
            return install_packs(
                session=session,
                locations=self.locations,
                sources=[str(source) for source in sources],
                **options,
            )

    def uninstall(self, *packs: str) -> PackOperationReport:
        with unit_of_work(self.factory) as session:
            return uninstall_packs(session=session, locations=self.locations, packs=list(packs))

    def register(self, packs: list[str] | None = None, types: list[str] | None = None) -> Any:
        with unit_of_work(self.factory) as session:
            return register_packs(
                session=session,
                locations=self.locations,
                packs=packs,
                types=types,
                system_user="stanley",
            )

    def refs(self, model: Any, **where: Any) -> set[str]:
        with self.factory() as session:
            return set(session.scalars(sa.select(model.ref).filter_by(**where)))

    def count(self, model: type[Base], pack: str) -> int:
        with self.factory() as session:
            query = sa.select(sa.func.count()).select_from(model).filter_by(pack=pack)
            return session.scalar(query) or 0


@pytest.fixture(params=["sqlite", "mariadb"])
def target(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "sqlite":
        database = f"[database]\nbackend = sqlite\ndb_name = {tmp_path / 'engine.sqlite3'}\n"
    else:
        name = request.getfixturevalue("scratch_database")
        database = (
            f"[database]\nbackend = mysql\nhost = 127.0.0.1\nusername = root\ndb_name = {name}\n"
        )
    packs_dir = tmp_path / "packs"
    packs_dir.mkdir()
    index = tmp_path / "index.json"
    index.write_text('{"packs": {"unrelated": {"name": "unrelated"}}}')
    conf = tmp_path / "st2.conf"
    conf.write_text(
        database
        + f"[content]\npacks_base_paths = {tmp_path / 'missing'}:{packs_dir}\n"
        + f"index_url = {index.as_uri()}\n"
        + f"[system]\ndata_dir = {tmp_path / 'data'}\n"
    )
    config = load_st2_config(conf)
    setup_engine_schema(config)
    engine = make_st2_engine(config, pool_size=2)
    built = Target(config, make_session_factory(engine), packs_dir, tmp_path / "sources")
    try:
        built.register(["core"])
        yield built
    finally:
        engine.dispose()


def write_pack(
    root: Path, directory: str, files: dict[str, Any] | None = None, **manifest: Any
) -> Path:
    pack = root / directory
    document = {"name": directory, "description": "d", "version": "1.0.0", "author": "Tests"}
    for relative, content in {"pack.yaml": {**document, **manifest}, **(files or {})}.items():
        path = pack / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return pack


def noop_action(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "runner_type": "noop", "enabled": True, **extra}


# --- install -------------------------------------------------------------------------------


def test_install_copies_and_registers_everything_in_the_pack(target: Target) -> None:
    source = target.sources / "monitoring"
    shutil.copytree(MONITORING, source)
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "stale.pyc").write_bytes(b"x")
    report = target.install(f"file://{source}")
    assert report.output() == {"packs_list": ["monitoring"], "warning_list": []}
    installed = target.packs_dir / "monitoring"
    assert (installed / "actions" / "collect_metrics.py").is_file()
    assert not (installed / "__pycache__").exists()
    assert sorted(path.name for path in target.packs_dir.iterdir()) == ["monitoring"]
    with target.factory() as session:
        pack = session.scalars(sa.select(PackDB).filter_by(ref="monitoring")).one()
        assert pack.path == str(installed.resolve())
        assert pack.version == "0.4.0"
    assert "monitoring.collect_metrics" in target.refs(ActionDB, pack="monitoring")
    assert target.count(RuleDB, "monitoring") == 6
    assert target.count(ConfigSchemaDB, "monitoring") == 1
    assert "monitoring.threshold_crossed" in target.refs(TriggerTypeDB, pack="monitoring")


def test_reinstall_replaces_the_copy_and_keeps_ids(target: Target) -> None:
    source = write_pack(target.sources, "mypack", {"actions/a.yaml": noop_action("a")})
    target.install(source)
    with target.factory() as session:
        pack_id = session.scalars(sa.select(PackDB.id).filter_by(ref="mypack")).one()
    (source / "actions" / "a.yaml").unlink()
    (source / "actions" / "b.yaml").write_text(yaml.safe_dump(noop_action("b")))
    target.install(source)
    assert sorted(p.name for p in (target.packs_dir / "mypack" / "actions").iterdir()) == ["b.yaml"]
    assert "mypack.b" in target.refs(ActionDB, pack="mypack")
    assert not (target.packs_dir / ".installing").exists(), "no copies left behind"
    with target.factory() as session:
        assert session.scalars(sa.select(PackDB.id).filter_by(ref="mypack")).one() == pack_id


def test_a_pack_that_fails_to_register_keeps_the_previous_copy(target: Target) -> None:
    source = write_pack(target.sources, "mypack", {"actions/a.yaml": noop_action("a")})
    target.install(source)
    (source / "actions" / "a.yaml").write_text(yaml.safe_dump(noop_action("a", parameters=5)))
    (source / "actions" / "c.yaml").write_text(yaml.safe_dump(noop_action("c")))
    with pytest.raises(ValidationError, match=r"Failed to register: .*a\.yaml: parameters"):
        target.install(source)
    kept = yaml.safe_load((target.packs_dir / "mypack" / "actions" / "a.yaml").read_text())
    assert "parameters" not in kept
    assert not (target.packs_dir / "mypack" / "actions" / "c.yaml").exists()
    assert target.refs(ActionDB, pack="mypack") == {"mypack.a"}
    assert not (target.packs_dir / ".installing").exists()


def test_a_new_pack_that_fails_leaves_nothing_behind(target: Target) -> None:
    source = write_pack(target.sources, "broken", {"actions/a.yaml": "name: [unclosed\n"})
    with pytest.raises(ValidationError, match="is not valid YAML"):
        target.install(source)
    assert list(target.packs_dir.iterdir()) == []
    assert target.refs(PackDB, ref="broken") == set()


def test_dependencies_must_be_found_installed_or_come_along(target: Target) -> None:
    needy = write_pack(target.sources, "needy", dependencies=["core", "helper=1.0.0"])
    with pytest.raises(ValidationError, match='No record of the "helper" pack in the index'):
        target.install(needy)
    assert list(target.packs_dir.iterdir()) == []
    skipped = target.install(needy, skip_dependencies=True)
    assert skipped.packs_list == ["needy"]
    helper = write_pack(target.sources, "helper")
    together = target.install(needy, helper)
    assert together.packs_list == ["needy", "helper"]


def test_incompatible_packs_need_force(target: Target) -> None:
    old = write_pack(target.sources, "old", python_versions=["2"], stackstorm_version=">=4.0.0")
    with pytest.raises(ValidationError, match=r"Python 2 only.*Use --force"):
        target.install(old)
    forced = target.install(old, force=True)
    assert forced.packs_list == ["old"]
    assert len(forced.warning_list) == 2
    assert "requires StackStorm >=4.0.0" in forced.warning_list[1]


def test_system_packs_and_bad_requests_are_refused(target: Target) -> None:
    core = write_pack(target.sources, "core")
    with pytest.raises(ValidationError, match='"core" is a system pack'):
        target.install(core)
    twice = write_pack(target.sources, "twice")
    with pytest.raises(ValidationError, match='"twice" is named twice'):
        target.install(twice, f"file://{twice}")
    outer = target.packs_dir.parent
    (outer / "pack.yaml").write_text("name: outer\ndescription: d\nversion: 1.0.0\nauthor: t\n")
    with pytest.raises(ValidationError, match="holds the packs directory"):
        target.install(outer)
    with pytest.raises(ValidationError, match='No record of the "aws" pack in the index'):
        target.install("aws")


def test_a_pack_already_installed_in_place_is_registered(target: Target) -> None:
    in_place = write_pack(target.packs_dir, "local", {"actions/a.yaml": noop_action("a")})
    report = target.install(f"file://{in_place}")
    assert report.packs_list == ["local"]
    assert (in_place / "actions" / "a.yaml").is_file()
    assert target.refs(ActionDB, pack="local") == {"local.a"}


# --- removal -------------------------------------------------------------------------------


def test_uninstall_unregisters_content_and_deletes_the_directory(target: Target) -> None:
    shutil.copytree(MONITORING, target.sources / "monitoring")
    target.install(target.sources / "monitoring")
    with target.factory() as session:
        triggers_before = set(session.scalars(sa.select(TriggerDB.ref)))
    report = target.uninstall("monitoring")
    assert report.output() == {"packs_list": ["monitoring"], "warning_list": []}
    assert not (target.packs_dir / "monitoring").exists()
    assert (target.sources / "monitoring").is_dir()
    for model in PACK_TABLES:
        assert target.count(model, "monitoring") == 0, model.__tablename__
    assert target.refs(PackDB, ref="monitoring") == set()
    assert target.refs(TriggerTypeDB, pack="monitoring") == set()
    assert target.refs(TriggerDB, pack="monitoring") == set()
    with target.factory() as session:
        triggers_after = set(session.scalars(sa.select(TriggerDB.ref)))
        webhooks = session.scalars(sa.select(TriggerDB).filter_by(type="core.st2.webhook"))
        assert list(webhooks) == [], "the webhook trigger went with the last rule using it"
    assert triggers_after < triggers_before
    assert {spec.ref for spec in BUILTIN_TRIGGER_TYPES} <= target.refs(TriggerTypeDB)
    assert "core.local" in target.refs(ActionDB)


def test_removing_a_users_pack_brings_the_bundled_one_back(target: Target) -> None:
    target.register(["linux"])
    user_linux = write_pack(target.sources, "linux", {"actions/a.yaml": noop_action("a")})
    installed = target.install(user_linux)
    assert installed.packs_list == ["linux"]
    assert target.refs(ActionDB, pack="linux") == {"linux.a"}
    removed = target.uninstall("linux")
    assert removed.packs_list == ["linux"]
    assert not (target.packs_dir / "linux").exists()
    restored = target.refs(ActionDB, pack="linux")
    assert "linux.disk_usage" in restored
    assert "linux.a" not in restored


def test_install_and_uninstall_take_the_packs_aliases_along(target: Target) -> None:
    shutil.copytree(CHATTY, target.sources / "chatty")
    target.install(target.sources / "chatty")
    assert target.refs(ActionAliasDB, pack="chatty") == {
        "chatty.say",
        "chatty.quiet",
        "chatty.count",
    }
    target.uninstall("chatty")
    assert target.count(ActionAliasDB, "chatty") == 0


def test_uninstall_of_what_is_not_installed_warns(target: Target) -> None:
    report = target.uninstall("ghost")
    assert report.output() == {"packs_list": [], "warning_list": ['Pack "ghost" is not installed.']}


def test_an_unregistered_pack_on_disk_is_deleted(target: Target) -> None:
    write_pack(target.packs_dir, "strayname", ref="stray")
    assert target.uninstall("stray").packs_list == ["stray"]
    assert list(target.packs_dir.iterdir()) == []


def test_system_packs_and_packs_outside_the_base_paths_stay(target: Target) -> None:
    with pytest.raises(ValidationError, match='"core" is a system pack and cannot be removed'):
        target.uninstall("core")
    elsewhere = write_pack(target.sources, "elsewhere")
    with unit_of_work(target.factory) as session:
        session.add(
            PackDB(
                id="a" * 24,
                uid="pack:elsewhere",
                ref="elsewhere",
                name="elsewhere",
                path=str(elsewhere),
            )
        )
    with pytest.raises(ValidationError, match="Refusing to delete"):
        target.uninstall("elsewhere")
    assert elsewhere.is_dir()
    assert target.refs(PackDB, ref="elsewhere") == {"elsewhere"}


# --- registration over the API -------------------------------------------------------------


def test_register_counts_per_kind(target: Target) -> None:
    write_pack(target.packs_dir, "mypack", {"actions/a.yaml": noop_action("a")})
    counts = target.register(["mypack"])
    assert counts["actions"] == 1
    assert (counts["aliases"], counts["rule_types"], counts["policy_types"]) == (0, 2, 3)
    assert list(counts) == [
        "runners",
        "actions",
        "triggers",
        "sensors",
        "rules",
        "rule_types",
        "policy_types",
        "aliases",
        "policies",
        "configs",
    ]
    assert target.register(["mypack"], ["policy_type"]) == {"policy_types": 3}


def test_register_of_a_missing_pack_is_a_bad_request(target: Target) -> None:
    with pytest.raises(ValidationError, match='Pack "nosuch" not found on disk: searched'):
        target.register(["nosuch"])


def test_register_fails_on_the_named_packs_failures_only(target: Target) -> None:
    write_pack(target.packs_dir, "good", {"actions/a.yaml": noop_action("a")})
    write_pack(target.packs_dir, "bad", {"actions/a.yaml": noop_action("a", runner_type="nope")})
    assert target.register(["good"])["actions"] == 1
    with pytest.raises(ValidationError, match=r"bad/actions/a\.yaml: runner_type"):
        target.register(["bad"])
    with pytest.raises(ValidationError, match="Failed to register"):
        target.register()
    assert target.refs(ActionDB, pack="bad") == set()


# --- configs -------------------------------------------------------------------------------


def test_set_config_validates_writes_and_stores(target: Target) -> None:
    schema = {
        "host": {"type": "string", "required": True},
        "port": {"type": "integer", "default": 1},
    }
    write_pack(target.packs_dir, "cfg", {"config.schema.yaml": schema})
    target.register(["cfg"])
    configs_dir = target.locations.configs_dir
    with unit_of_work(target.factory) as session:
        row, attributes = set_config(
            session=session, pack="cfg", values={"host": "h"}, configs_dir=configs_dir
        )
        assert (row.values, attributes) == ({"host": "h", "port": 1}, schema)
    assert yaml.safe_load((configs_dir / "cfg.yaml").read_text()) == {"host": "h"}
    with unit_of_work(target.factory) as session, pytest.raises(ValidationError, match="port"):
        set_config(
            session=session, pack="cfg", values={"host": "h", "port": "x"}, configs_dir=configs_dir
        )
    assert yaml.safe_load((configs_dir / "cfg.yaml").read_text()) == {"host": "h"}
    with unit_of_work(target.factory) as session, pytest.raises(NotFoundError):
        set_config(session=session, pack="nosuch", values={}, configs_dir=configs_dir)
    counts = target.register(["cfg"], ["config"])
    assert counts == {"configs": 1}
    with target.factory() as session:
        stored = session.scalars(sa.select(ConfigDB.values).filter_by(pack="cfg")).one()
        assert stored == {"host": "h", "port": 1}
