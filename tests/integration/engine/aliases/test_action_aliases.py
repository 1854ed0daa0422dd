"""Action aliases through the real engine and the official ``st2`` CLI: the ``chatty`` pack's
aliases register with ``st2ctl reload``, ``st2 action-alias list|get|match|execute|create|
delete`` work, and an alias execution runs the action with the parameters taken from the
command, the defaults of its format and its rendered ``immutable_parameters``."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.support.pack_actions import engine_api, output, wait_for
from tests.integration.support.st2cli import (
    STREAM_SERVICES,
    RunningEngine,
    St2,
    logged_in,
    running_engine,
)
from tests.paths import FIXTURE_PACKS

PACKS = FIXTURE_PACKS / "aliases"
DONE = {"succeeded", "failed", "timeout", "abandoned", "canceled"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    extra = f"[content]\npacks_base_paths = {PACKS}\n"
    directory = tmp_path_factory.mktemp("aliases")
    with running_engine(directory, services=STREAM_SERVICES, extra_conf=extra) as running:
        yield running


@pytest.fixture(scope="module")
def st2(engine: RunningEngine, tmp_path_factory: pytest.TempPathFactory) -> St2:
    cli = logged_in(engine, tmp_path_factory.mktemp("home"))
    assert cli("key", "set", "chatty_room", "ops").returncode == 0
    return cli


@pytest.fixture
def api(engine: RunningEngine, st2: St2) -> Iterator[httpx.Client]:
    with engine_api(engine, st2) as client:
        yield client


def executed(st2: St2, api: httpx.Client, command: str) -> dict[str, Any]:
    """Run ``st2 action-alias execute`` and return the finished execution."""
    result = st2("action-alias", "execute", command)
    assert result.returncode == 0, output(result)
    found = re.search(r"st2 execution get ([0-9a-f]{24})", result.stdout)
    assert found, result.stdout
    return wait_for(api, found.group(1), DONE)


def test_registered_aliases_are_listed_and_shown(st2: St2) -> None:
    listed = st2("action-alias", "list", "-j")
    assert listed.returncode == 0, output(listed)
    refs = {alias["ref"]: alias for alias in listed.json()}
    assert {"chatty.say", "chatty.quiet", "chatty.count"} <= refs.keys()
    assert refs["chatty.quiet"]["enabled"] is False
    shown = st2("action-alias", "get", "chatty.say", "-j")
    assert shown.returncode == 0, output(shown)
    alias = shown.json()
    assert alias["uid"] == "action_alias:chatty:say"
    assert alias["action_ref"] == "chatty.say"
    assert alias["formats"][1] == {
        "display": "shout <message>",
        "representation": ["shout {{ message }} loudly"],
    }
    assert alias["ack"]["append_url"] is False and alias["result"]["enabled"] is True
    assert alias["extra"] == {"slack": {"icon": "speech_balloon"}}
    assert alias["metadata_file"] == "aliases/say.yaml"
    table = st2("action-alias", "list", "--pack", "chatty")
    assert "chatty.count" in table.stdout and "chatty.say" in table.stdout


def test_match_names_the_alias_or_says_why_not(st2: St2) -> None:
    matched = st2("action-alias", "match", "shout hello loudly", "-j")
    assert matched.returncode == 0, output(matched)
    assert matched.json()[0]["name"] == "say"
    disabled = st2("action-alias", "match", "whisper psst")
    assert disabled.returncode != 0
    assert "Command 'whisper psst' matched no patterns" in output(disabled)


def test_execute_runs_the_action_with_the_commands_parameters(st2: St2, api: httpx.Client) -> None:
    execution = executed(st2, api, "say hello 3")
    assert execution["status"] == "succeeded", execution["result"]
    # times comes as text from the command and is cast to the action's integer; channel is the
    # alias's immutable parameter, rendered from the alias context and the datastore.
    assert execution["parameters"] == {"message": "hello", "times": 3, "channel": "cli-ops"}
    assert execution["result"]["stdout"] == "hello x3 to cli-ops"
    context = execution["context"]
    assert context["action_alias_ref"] == "chatty.say"
    assert context["source_channel"] == "cli" and context["user"] == "st2admin"
    defaulted = executed(st2, api, "say 'good morning'")
    assert defaulted["result"]["stdout"] == "good morning x1 to cli-ops"
    shouted = executed(st2, api, "shout hey loudly")
    assert shouted["result"]["stdout"] == "hey x1 to cli-ops"
    counted = executed(st2, api, "count times=4 message=tick")
    assert counted["result"]["stdout"] == "tick x4 to nowhere"


def test_command_text_is_never_rendered_as_a_template(st2: St2, api: httpx.Client) -> None:
    execution = executed(st2, api, "say '{{ st2kv.system.chatty_room }}'")
    assert execution["result"]["stdout"] == "{{ st2kv.system.chatty_room }} x1 to cli-ops"


def test_refusals(st2: St2, api: httpx.Client) -> None:
    nothing = st2("action-alias", "execute", "whisper psst")
    assert nothing.returncode != 0
    assert "matched no patterns" in output(nothing)
    immutable = st2("action-alias", "execute", "say hi channel=elsewhere")
    assert immutable.returncode != 0
    assert "Immutable arguments cannot be overriden: channel" in output(immutable)
    not_a_number = st2("action-alias", "execute", "say hi lots")
    assert not_a_number.returncode != 0
    assert "times" in output(not_a_number)
    chat = api.post(
        "/aliasexecution/match_and_execute",
        json={"command": "say hi", "source_channel": "c", "notification_route": "slack"},
    )
    assert chat.status_code == 400
    assert chat.json()["faultstring"].startswith("notification_route: this engine does not")


def test_aliasexecution_by_name_answers_the_rendered_acknowledgement(api: httpx.Client) -> None:
    answer = api.post(
        "/aliasexecution",
        json={
            "name": "say",
            "format": "say {{ message }} {{ times = 1 }}",
            "command": "say ack 2",
            "user": "alice",
            "source_channel": "general",
        },
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["message"] == "Saying ack (chatty.say)"
    assert body["extra"] == {"color": "say-green"}
    assert body["actionalias"]["ref"] == "chatty.say"
    execution = wait_for(api, body["execution"]["id"], DONE)
    assert execution["result"]["stdout"] == "ack x2 to general-ops"
    assert execution["context"]["api_user"] == "alice"
    other_format = api.post(
        "/aliasexecution",
        json={"name": "say", "format": "nope", "command": "x", "source_channel": "c"},
    )
    assert other_format.status_code == 400
    assert other_format.json()["faultstring"] == (
        'Format string "nope" is not available on the alias "say"'
    )
    disabled = api.post(
        "/aliasexecution",
        json={
            "name": "quiet",
            "format": "whisper {{ message }}",
            "command": "whisper x",
            "source_channel": "c",
        },
    )
    assert disabled.status_code == 400
    assert disabled.json()["faultstring"] == 'Action alias with name "quiet" is disabled.'


def test_create_update_and_delete_through_the_cli(
    st2: St2, api: httpx.Client, tmp_path: Path
) -> None:
    document = {
        "name": "echo_twice",
        "pack": "chatty",
        "action_ref": "chatty.say",
        "formats": ["say {{ message }} {{ times = 1 }}"],
    }
    path = tmp_path / "alias.json"
    path.write_text(json.dumps(document))
    created = st2("action-alias", "create", str(path), "-j")
    assert created.returncode == 0, output(created)
    assert created.json()["ref"] == "chatty.echo_twice"
    ambiguous = st2("action-alias", "execute", "say hello")
    assert ambiguous.returncode != 0
    assert "Command 'say hello' matched more than 1 pattern" in output(ambiguous)
    taken = st2("action-alias", "create", str(path))
    assert taken.returncode != 0 and "exists already" in output(taken)
    path.write_text(json.dumps({**document, "enabled": False}))
    updated = st2("action-alias", "update", "chatty.echo_twice", str(path), "-j")
    assert updated.returncode == 0, output(updated)
    assert updated.json()["enabled"] is False
    assert st2("action-alias", "match", "say hello").returncode == 0
    deleted = st2("action-alias", "delete", "chatty.echo_twice")
    assert deleted.returncode == 0, output(deleted)
    assert api.get("/actionalias/chatty.echo_twice").status_code == 404
    unknown = api.post("/actionalias", json={**document, "name": "x", "colour": "red"})
    assert unknown.status_code == 400
    assert unknown.json()["faultstring"] == "colour: is not a known field here"


def test_help_lists_display_strings(api: httpx.Client) -> None:
    answer = api.get("/actionalias/help", params={"pack": "chatty", "filter": "SHOUT"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "available": 1,
        "helpstrings": [
            {
                "pack": "chatty",
                "display": "shout <message>",
                "description": "Say something, some number of times",
            }
        ],
    }


def test_pack_register_counts_aliases(st2: St2) -> None:
    registered = st2("pack", "register", "chatty", "-j")
    assert registered.returncode == 0, output(registered)
    assert registered.json()["aliases"] == 3


def first_announcement(engine: RunningEngine, token: str, found: list[Any]) -> threading.Event:
    """Listen on the stream in a thread; put the first announcement in ``found``. The event
    returned is set once the stream is open."""
    opened = threading.Event()

    def listen() -> None:
        params = {"events": "st2.announcement__*", "x-auth-token": token}
        with httpx.stream("GET", f"{engine.stream_url}/stream", params=params, timeout=60) as got:
            opened.set()
            name = None
            for line in got.iter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: ") and name:
                    found.append((name, json.loads(line.removeprefix("data: "))))
                    return

    threading.Thread(target=listen, daemon=True).start()
    return opened


def test_announcement_runner_posts_to_the_stream(engine: RunningEngine, st2: St2) -> None:
    found: list[Any] = []
    assert first_announcement(engine, st2.env["ST2_AUTH_TOKEN"], found).wait(30)
    time.sleep(0.5)
    ran = st2("run", "chatty.announce", "message=deployed", "channel=ops", "-j")
    assert ran.returncode == 0, output(ran)
    assert ran.json()["result"]["output"] == {
        "message": "deployed",
        "channel": "ops",
    }
    deadline = time.monotonic() + 30
    while not found and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found == [
        (
            "st2.announcement__chatops",
            {"payload": {"message": "deployed", "channel": "ops"}, "trace_context": None},
        )
    ]
    refused = st2("run", "chatty.announce_unflagged", "message=x", "-j")
    assert refused.returncode != 0
    error = refused.json()["result"]["error"]
    assert error == "Experimental flag is missing for action chatty.announce_unflagged"
