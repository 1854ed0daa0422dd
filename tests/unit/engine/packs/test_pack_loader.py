"""Reading packs from disk: pack.yaml, resource files, config schema and config, and errors."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from poundcake.engine.packs.errors import MetadataError
from poundcake.engine.packs.loader import (
    ContentType,
    PackSpec,
    config_path,
    content_files,
    discover_packs,
    load_config,
    load_config_schema,
    load_pack,
)
from poundcake.engine.packs.locations import BUNDLED_PACKS_DIR
from poundcake.engine.packs.resources import (
    load_action,
    load_alias,
    load_policy,
    load_rule,
    load_sensor,
    load_trigger_type,
)
from tests.paths import FIXTURE_PACKS

FIXTURES = FIXTURE_PACKS
GOOD = FIXTURES / "good"
MANIFEST = """\
name: {name}
description: A pack for tests.
version: 1.0.0
author: Tests
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def make_pack(root: Path, directory: str, manifest: str | None = None) -> Path:
    pack_dir = root / directory
    write(pack_dir / "pack.yaml", manifest or MANIFEST.format(name=directory))
    return pack_dir


@pytest.fixture
def pack(tmp_path: Path) -> PackSpec:
    return load_pack(make_pack(tmp_path, "sample"))


def error_of(call: object, *args: object) -> MetadataError:
    assert callable(call)
    with pytest.raises(MetadataError) as caught:
        call(*args)
    return caught.value


# --- pack.yaml ------------------------------------------------------------------------------


def test_fixture_pack_yaml_loads_with_every_field() -> None:
    pack = load_pack(GOOD / "monitoring")
    assert pack.ref == "monitoring"
    assert pack.name == "Monitoring Tools"
    assert pack.version == "0.4.0"
    assert pack.keywords == ["monitoring", "metrics", "nagios"]
    assert pack.python_versions == ["3"]
    assert pack.stackstorm_version == ">=3.0.0"
    assert pack.dependencies == ["core"]
    assert pack.contributors == ["Ada Lovelace <ada@example.com>", "Grace Hopper"]
    assert pack.email == "platform@example.com"
    assert pack.path == (GOOD / "monitoring").resolve()
    assert "actions/collect_metrics.py" in pack.files
    assert "actions/workflows/rollout.yaml" in pack.files
    assert "pack.yaml" in pack.files


@pytest.mark.parametrize(
    ("directory", "manifest", "expected"),
    [
        ("anything", "ref: explicit_ref\nname: Whatever Name\n", "explicit_ref"),
        ("from_dir", "name: Some Name\n", "from_dir"),
        ("has-dash", "name: from_name\n", "from_name"),
    ],
)
def test_pack_ref_is_ref_then_directory_then_name(
    tmp_path: Path, directory: str, manifest: str, expected: str
) -> None:
    text = manifest + "description: d\nversion: 1.0.0\nauthor: a\n"
    assert load_pack(make_pack(tmp_path, directory, text)).ref == expected


def test_pack_ref_that_cannot_be_derived_names_the_field(tmp_path: Path) -> None:
    pack_dir = make_pack(tmp_path, "has-dash", "name: Has Dash\ndescription: d\nversion: 1.0.0\n")
    error = error_of(load_pack, pack_dir)
    assert error.field == "ref"
    assert error.path == str(pack_dir / "pack.yaml")
    assert "has-dash" in error.problem


def test_explicit_ref_must_be_a_valid_ref(tmp_path: Path) -> None:
    text = "ref: My-Pack\nname: n\ndescription: d\nversion: 1.0.0\nauthor: a\n"
    assert error_of(load_pack, make_pack(tmp_path, "p", text)).field == "ref"


@pytest.mark.parametrize("missing", ["name", "description", "version", "author"])
def test_required_pack_fields(tmp_path: Path, missing: str) -> None:
    lines = [
        line for line in MANIFEST.format(name="p").splitlines() if not line.startswith(missing)
    ]
    pack_dir = make_pack(tmp_path, "p", "\n".join(lines) + "\n")
    error = error_of(load_pack, pack_dir)
    assert (error.field, error.problem) == (missing, "is required")
    assert str(error) == f"{pack_dir / 'pack.yaml'}: {missing}: is required"


@pytest.mark.parametrize(
    ("written", "expected"),
    [("0.4", "0.4.0"), ("1.10", "1.10.0"), ('"2.0"', "2.0.0"), ("3.1.4", "3.1.4")],
)
def test_numeric_looking_versions_keep_what_was_written(
    tmp_path: Path, written: str, expected: str
) -> None:
    text = f"name: p\ndescription: d\nversion: {written}\nauthor: a\n"
    assert load_pack(make_pack(tmp_path, "p", text)).version == expected


@pytest.mark.parametrize("version", ["one", "1.0.0.0", "v1.0.0"])
def test_version_must_be_semantic(tmp_path: Path, version: str) -> None:
    text = f"name: p\ndescription: d\nversion: {version}\nauthor: a\n"
    assert error_of(load_pack, make_pack(tmp_path, "p", text)).field == "version"


def test_python_versions_accept_numbers_but_only_2_and_3(tmp_path: Path) -> None:
    base = "name: p\ndescription: d\nversion: 1.0.0\nauthor: a\n"
    assert load_pack(
        make_pack(tmp_path, "p", base + "python_versions: [2, 3]\n")
    ).python_versions == [
        "2",
        "3",
    ]
    error = error_of(load_pack, make_pack(tmp_path, "q", base + "python_versions: ['4']\n"))
    assert error.field == "python_versions.0"


def test_reserved_pack_name(tmp_path: Path) -> None:
    text = "ref: _global\nname: g\ndescription: d\nversion: 1.0.0\nauthor: a\n"
    error = error_of(load_pack, make_pack(tmp_path, "g", text))
    assert error.field == "ref"
    assert "reserved" in error.problem


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: [unclosed\n", "is not valid YAML (line 2"),
        ("- a\n- b\n", "must hold a mapping, not a list"),
        ("", "is empty"),
    ],
)
def test_unreadable_metadata_names_the_file(tmp_path: Path, text: str, problem: str) -> None:
    pack_dir = tmp_path / "p"
    write(pack_dir / "pack.yaml", text)
    error = error_of(load_pack, pack_dir)
    assert error.path == str(pack_dir / "pack.yaml")
    assert error.field is None
    assert error.problem.startswith(problem)


# --- discovery ------------------------------------------------------------------------------


def test_discovery_searches_in_order_and_the_first_ref_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    make_pack(first, "shared")
    make_pack(second, "shared", MANIFEST.format(name="shared").replace("Tests", "Other"))
    make_pack(second, "other")
    (second / "not_a_pack").mkdir()
    packs, failures = discover_packs([first, second], BUNDLED_PACKS_DIR)
    assert failures == []
    assert [(pack.ref, pack.author) for pack in packs] == [("shared", "Tests"), ("other", "Tests")]


def test_discovery_reports_bad_packs_and_keeps_the_rest(tmp_path: Path) -> None:
    make_pack(tmp_path, "good")
    write(tmp_path / "broken" / "pack.yaml", "name: broken\n")
    missing = tmp_path / "missing"
    packs, failures = discover_packs([tmp_path, missing], BUNDLED_PACKS_DIR)
    assert [pack.ref for pack in packs] == ["good"]
    problems = {(Path(failure.path).parent.name, failure.field) for failure in failures}
    assert problems == {("broken", "description"), (tmp_path.name, None)}


def test_a_users_pack_replaces_the_bundled_one_but_not_a_system_pack(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_pack(tmp_path, "linux", MANIFEST.format(name="linux").replace("Tests", "User"))
    make_pack(tmp_path, "core", MANIFEST.format(name="core").replace("Tests", "User"))
    with caplog.at_level("INFO", logger="poundcake.engine.packs.loader"):
        packs, failures = discover_packs([BUNDLED_PACKS_DIR, tmp_path], BUNDLED_PACKS_DIR)
    assert failures == []
    by_ref = {pack.ref: pack for pack in packs}
    assert by_ref["linux"].path == (tmp_path / "linux").resolve()
    assert by_ref["core"].path == (BUNDLED_PACKS_DIR / "core").resolve()
    assert by_ref["http"].path == (BUNDLED_PACKS_DIR / "http").resolve()
    assert (
        f"Bundled pack linux in {(BUNDLED_PACKS_DIR / 'linux').resolve()} is replaced by the "
        f"user's pack in {(tmp_path / 'linux').resolve()}"
    ) in caplog.text
    assert f"Pack core in {(tmp_path / 'core').resolve()} is ignored" in caplog.text


def test_system_packs_may_use_system_names() -> None:
    packs, failures = discover_packs([BUNDLED_PACKS_DIR], BUNDLED_PACKS_DIR)
    assert failures == []
    assert "core" in [pack.ref for pack in packs]


def test_content_files_are_the_metadata_directly_in_the_directory(tmp_path: Path) -> None:
    pack_dir = make_pack(tmp_path, "p")
    for name in ("b.yaml", "a.yml", "c.json", "config.yaml", "script.sh", "workflows/w.yaml"):
        write(pack_dir / "actions" / name, "{}")
    write(pack_dir / "rules" / "config.yaml", "{}")
    pack = load_pack(pack_dir)
    names = [path.name for path in content_files(pack, ContentType.ACTIONS)]
    assert names == ["a.yml", "b.yaml", "c.json"]
    assert [path.name for path in content_files(pack, ContentType.RULES)] == ["config.yaml"]
    assert content_files(pack, ContentType.POLICIES) == []


# --- actions --------------------------------------------------------------------------------


def test_action_parameters_are_kept_as_written() -> None:
    pack = load_pack(GOOD / "monitoring")
    path = GOOD / "monitoring" / "actions" / "collect_metrics.yaml"
    written = yaml.safe_load(path.read_text())
    action = load_action(pack, path)
    assert action.ref == "monitoring.collect_metrics"
    assert action.runner_type == "python-script"
    assert action.entry_point == "collect_metrics.py"
    assert action.parameters == written["parameters"]
    assert action.output_schema == written["output_schema"]
    assert action.notify == written["notify"]
    assert action.tags == [{"name": "team", "value": "sre"}]
    assert action.metadata_file == "actions/collect_metrics.yaml"
    assert action.enabled is True


def test_action_defaults(pack: PackSpec) -> None:
    path = write(pack.path / "actions" / "a.yaml", "name: a\nrunner_type: noop\n")
    action = load_action(pack, path)
    assert (action.enabled, action.entry_point, action.parameters) == (True, "", {})
    assert (action.description, action.notify, action.tags) == (None, {}, [])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("runner_type: noop\n", "name"),
        ("name: a\n", "runner_type"),
        ("name: a\nrunner_type: noop\nrunner: x\n", "runner"),
        ("name: a\nrunner_type: noop\npack: other\n", "pack"),
        ("name: a\nrunner_type: noop\nenabled: maybe\n", "enabled"),
        ("name: a\nrunner_type: noop\nparameters: [x]\n", "parameters"),
        (
            "name: a\nrunner_type: noop\nparameters: {bad-name: {type: string}}\n",
            "parameters.bad-name",
        ),
        ("name: a\nrunner_type: noop\nparameters: {x: string}\n", "parameters.x"),
        ("name: a\nrunner_type: noop\nparameters: {x: {type: strng}}\n", "parameters.x.type"),
        (
            "name: a\nrunner_type: noop\nparameters: {x: {type: [string, integer]}}\n",
            "parameters.x.type",
        ),
        (
            "name: a\nrunner_type: noop\nparameters: {x: {required: 'yes'}}\n",
            "parameters.x.required",
        ),
        ("name: a\nrunner_type: noop\nparameters: {x: {secret: 1}}\n", "parameters.x.secret"),
        ("name: a\nrunner_type: noop\nparameters: {x: {position: -1}}\n", "parameters.x.position"),
        ("name: a\nrunner_type: noop\nparameters: {x: {flavour: mild}}\n", "parameters.x.flavour"),
        # StackStorm's action_params.json has no ``format``: it refuses it, and so do we.
        (
            "name: a\nrunner_type: noop\nparameters: {x: {format: date-time}}\n",
            "parameters.x.format",
        ),
        (
            "name: a\nrunner_type: noop\nparameters: {x: {type: array, items: 5}}\n",
            "parameters.x.items",
        ),
        ("name: a\nrunner_type: noop\nparameters: {x: {enum: []}}\n", "parameters.x.enum"),
        ("name: a\nrunner_type: noop\noutput_schema: {type: 7}\n", "output_schema.type"),
        ("name: a\nrunner_type: noop\nnotify: {on-done: {message: m}}\n", "notify.on-done"),
        (
            "name: a\nrunner_type: noop\nnotify: {on-success: {routes: slack}}\n",
            "notify.on-success.routes",
        ),
        ("name: a\nrunner_type: noop\ntags: [team]\n", "tags.0"),
    ],
)
def test_action_errors_name_the_field(pack: PackSpec, body: str, field: str) -> None:
    path = write(pack.path / "actions" / "a.yaml", body)
    error = error_of(load_action, pack, path)
    assert error.path == str(path)
    assert error.field == field, error


# --- rules, sensors, trigger types, policies ------------------------------------------------


def test_rule_fixture_and_defaults() -> None:
    pack = load_pack(GOOD / "monitoring")
    rules = GOOD / "monitoring" / "rules"
    webhook = load_rule(pack, rules / "alert_webhook.yaml")
    assert webhook.ref == "monitoring.alert_webhook"
    assert webhook.enabled is False
    assert webhook.type == {"ref": "standard", "parameters": {}}
    assert webhook.trigger_type == "core.st2.webhook"
    assert webhook.trigger_parameters == {"url": "monitoring/alerts"}
    assert webhook.action_ref == "core.local"
    assert webhook.action_parameters == {"cmd": "echo {{ trigger.body.alertname }}"}
    threshold = load_rule(pack, rules / "remediate_threshold.yaml")
    assert threshold.enabled is True
    assert threshold.criteria["trigger.metric"] == {"type": "inside", "pattern": ["cpu", "memory"]}
    assert threshold.criteria["trigger.tags"] == {"type": "exists"}
    assert load_rule(pack, rules / "alert_webhook_audit.yaml").type["ref"] == "backstop"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("action: {ref: core.noop}\ntrigger: {type: core.st2.webhook}\n", "name"),
        ("name: r\naction: {ref: core.noop}\n", "trigger"),
        ("name: r\naction: {ref: core.noop}\ntrigger: {parameters: {}}\n", "trigger.type"),
        ("name: r\ntrigger: {type: t}\naction: {ref: a, params: {}}\n", "action.params"),
        ("name: r\ntrigger: {type: t}\naction: {parameters: {}}\n", "action.ref"),
        ("name: r\ntrigger: {type: t}\naction: {ref: a}\nenabled: 'on'\n", "enabled"),
        (
            "name: r\ntrigger: {type: t}\naction: {ref: a}\ncriteria: {trigger.x: 5}\n",
            "criteria.trigger.x",
        ),
        ("name: r\ntrigger: {type: t}\naction: {ref: a}\ntype: {ref: standard, x: 1}\n", "type.x"),
    ],
)
def test_rule_errors_name_the_field(pack: PackSpec, body: str, field: str) -> None:
    path = write(pack.path / "rules" / "r.yaml", body)
    assert error_of(load_rule, pack, path).field == field


def test_sensor_trigger_types_belong_to_the_pack() -> None:
    pack = load_pack(GOOD / "monitoring")
    sensor = load_sensor(pack, GOOD / "monitoring" / "sensors" / "metric_sensor.yaml")
    assert sensor.ref == "monitoring.MetricSensor"
    assert sensor.entry_point == "sensors.metric_sensor.MetricSensor"
    assert sensor.artifact_uri == f"file://{pack.path / 'sensors' / 'metric_sensor.py'}"
    assert sensor.poll_interval == 30
    assert [trigger.ref for trigger in sensor.trigger_types] == [
        "monitoring.threshold_crossed",
        "monitoring.metric_poll",
    ]
    assert {trigger.metadata_file for trigger in sensor.trigger_types} == {
        "sensors/metric_sensor.yaml"
    }
    assert sensor.trigger_types[1].parameters_schema["properties"]["metric"]["required"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("entry_point: s.py\n", "class_name"),
        ("class_name: S\n", "entry_point"),
        ("class_name: S\nentry_point: s.py\npoll_interval: 1\n", "poll_interval"),
        (
            "class_name: S\nentry_point: s.py\ntrigger_types: [{description: x}]\n",
            "trigger_types.0.name",
        ),
        (
            "class_name: S\nentry_point: s.py\ntrigger_types: [{name: t, extra: 1}]\n",
            "trigger_types.0.extra",
        ),
        (
            "class_name: S\nentry_point: s.py\n"
            "trigger_types: [{name: t, payload_schema: {type: x}}]\n",
            "trigger_types.0.payload_schema.type",
        ),
    ],
)
def test_sensor_errors_name_the_field(pack: PackSpec, body: str, field: str) -> None:
    path = write(pack.path / "sensors" / "s.yaml", body)
    assert error_of(load_sensor, pack, path).field == field


def test_fields_stackstorm_drops_are_named_for_a_warning(pack: PackSpec) -> None:
    path = write(pack.path / "sensors" / "s.yaml", "class_name: S\nentry_point: s.py\nname: s\n")
    assert load_sensor(pack, path).ignored_fields == ("name",)
    manifest = MANIFEST.format(name="extra") + "homepage: https://example.com\nicon: x.png\n"
    assert load_pack(make_pack(pack.path.parent, "extra", manifest)).ignored_fields == (
        "homepage",
        "icon",
    )
    assert pack.ignored_fields == ()


def test_alias_with_every_field() -> None:
    pack = load_pack(FIXTURES / "aliases" / "chatty")
    alias = load_alias(pack, pack.path / "aliases" / "say.yaml")
    assert (alias.ref, alias.action_ref, alias.enabled) == ("chatty.say", "chatty.say", True)
    assert alias.formats[1]["representation"] == ["shout {{ message }} loudly"]
    assert alias.ack["extra"] == {"color": "{{ actionalias.name }}-green"}
    assert alias.result["format"] == "Said {{ execution.result.stdout }}"
    assert alias.extra == {"slack": {"icon": "speech_balloon"}}
    assert alias.immutable_parameters == {
        "channel": "{{ source_channel }}-{{ st2kv.system.chatty_room }}"
    }
    assert alias.metadata_file == "aliases/say.yaml"
    quiet = load_alias(pack, pack.path / "aliases" / "quiet.yaml")
    assert quiet.enabled is False and quiet.pack == "chatty"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("formats: [a]\n", "name"),
        ("name: a\nformats: [a]\n", "action_ref"),
        ("name: a\naction_ref: p.a\ncolour: red\n", "colour"),
        ("name: a\naction_ref: p.a\nformats: [3]\n", "formats.0"),
        ("name: a\naction_ref: p.a\nformats: [{display: d, shape: x}]\n", "formats.0.shape"),
        (
            "name: a\naction_ref: p.a\nformats: [{representation: [1]}]\n",
            "formats.0.representation.0",
        ),
        ("name: a\naction_ref: p.a\nack: {enabled: 'no'}\n", "ack.enabled"),
        ("name: a\naction_ref: p.a\nack: {sound: beep}\n", "ack.sound"),
        ("name: a\naction_ref: p.a\nresult: {append_url: true}\n", "result.append_url"),
        ("name: a\naction_ref: p.a\nimmutable_parameters: [x]\n", "immutable_parameters"),
        ("name: a\naction_ref: p.a\npack: other\n", "pack"),
    ],
)
def test_alias_errors_name_the_field(pack: PackSpec, body: str, field: str) -> None:
    path = write(pack.path / "aliases" / "a.yaml", body)
    error = error_of(load_alias, pack, path)
    assert (error.path, error.field) == (str(path), field), error


def test_trigger_type_and_policy_fixtures() -> None:
    pack = load_pack(GOOD / "monitoring")
    trigger_type = load_trigger_type(pack, GOOD / "monitoring/triggers/maintenance_window.yaml")
    assert trigger_type.ref == "monitoring.maintenance_window"
    assert trigger_type.parameters_schema == {}
    assert trigger_type.tags == [{"name": "kind", "value": "calendar"}]
    policy = load_policy(pack, GOOD / "monitoring/policies/http_retry.yaml")
    assert (policy.ref, policy.resource_ref, policy.policy_type) == (
        "monitoring.http.retry",
        "core.http",
        "action.retry",
    )
    assert policy.enabled is True
    assert policy.parameters == {"retry_on": "timeout", "delay": 2}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("name: p\npolicy_type: action.retry\n", "resource_ref"),
        ("name: p\nresource_ref: a.b\n", "policy_type"),
        ("name: p\nresource_ref: a.b\npolicy_type: t\nparameters: 3\n", "parameters"),
        ("name: p\nresource_ref: a.b\npolicy_type: t\nthreshold: 3\n", "threshold"),
    ],
)
def test_policy_errors_name_the_field(pack: PackSpec, body: str, field: str) -> None:
    path = write(pack.path / "policies" / "p.yaml", body)
    assert error_of(load_policy, pack, path).field == field


# --- config schema and config ---------------------------------------------------------------


def test_config_gets_the_schema_defaults() -> None:
    pack = load_pack(GOOD / "monitoring")
    schema = load_config_schema(pack)
    assert schema is not None
    assert schema["api_token"]["secret"] is True
    values = load_config(config_path(FIXTURES / "configs", pack), schema)
    assert values == {
        "api_url": "https://metrics.example.com/api",
        "api_token": "{{ st2kv.system.metrics_token }}",
        "timeout": 10,
        "verify_ssl": True,
        "thresholds": {"warning": 70, "critical": 95},
        "regions": ["eu-west-1"],
        "proxy": None,
    }


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ("api_token: t\ntimeout: soon\n", "timeout"),
        ("api_token: t\nthresholds: {warning: high}\n", "thresholds.warning"),
        ("api_token: t\nthresholds: {extreme: 99}\n", "thresholds"),
        ("timeout: 5\n", None),
    ],
)
def test_config_errors_name_the_file_and_attribute(
    tmp_path: Path, config: str, field: str | None
) -> None:
    pack_dir = tmp_path / "monitoring"
    shutil.copytree(GOOD / "monitoring", pack_dir)
    pack = load_pack(pack_dir)
    path = write(tmp_path / "configs" / "monitoring.yaml", config)
    error = error_of(load_config, path, load_config_schema(pack))
    assert error.path == str(path)
    assert error.field == field
    if field is None:
        assert "'api_token' is a required property" in error.problem


def test_empty_config_file_gets_defaults(pack: PackSpec) -> None:
    write(pack.path / "config.schema.yaml", "region: {type: string, default: here}\n")
    path = write(pack.path.parent / "configs" / "sample.yaml", "")
    assert load_config(path, load_config_schema(pack)) == {"region": "here"}


def test_bad_config_schema_names_the_attribute(pack: PackSpec) -> None:
    path = write(
        pack.path / "config.schema.yaml",
        "ok: {type: string}\nnested: {type: object, properties: {port: {type: integr}}}\n",
    )
    error = error_of(load_config_schema, pack)
    assert error.path == str(path)
    assert error.field == "nested.port.type"
    write(pack.path / "config.schema.yaml", "region: string\n")
    assert error_of(load_config_schema, pack).field == "region"
    # StackStorm checks each attribute against an action parameter's schema, so a keyword
    # outside it is refused, not ignored.
    write(pack.path / "config.schema.yaml", "region: {type: string, defualt: eu}\n")
    assert error_of(load_config_schema, pack).field == "region.defualt"
