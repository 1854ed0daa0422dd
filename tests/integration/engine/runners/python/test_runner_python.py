"""The python-script runner: real subprocesses running small actions written per test."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from poundcake.db.engine import make_st2_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.keyvalue import service
from poundcake.engine.keyvalue.models import KeyValuePairDB
from poundcake.engine.packs.virtualenvs import INCOMPLETE_MARKER, VirtualenvError
from poundcake.engine.runners.base import RunnerOutcome, RunnerRequest, RunnerServices
from poundcake.engine.runners.python.runner import PythonRunner
from poundcake.engine.runners.registry import runner_class, runner_types
from poundcake.exceptions import ValidationError
from poundcake.ids import new_id
from tests.integration.support.datastore_helpers import engine_config
from tests.integration.support.sshd import SshServer, running_sshd


class Recorder:
    """An output sink that remembers lines and can wake a test when one arrives."""

    def __init__(self, on_line: Callable[[str, str], None] | None = None) -> None:
        self.lines: list[tuple[str, str]] = []
        self._on_line = on_line
        self._changed = threading.Condition()

    def __call__(self, output_type: str, data: str) -> None:
        with self._changed:
            self.lines.append((output_type, data))
            self._changed.notify_all()
        if self._on_line is not None:
            self._on_line(output_type, data)

    def wait_for(self, text: str, timeout: float = 30) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: any(text in data for _, data in self.lines), timeout
            )


def write_action(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / "packs" / "examples" / "actions" / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def make_request(path: Path, **fields: Any) -> RunnerRequest:
    return RunnerRequest(
        execution_id=new_id(),
        action_ref=f"examples.{path.stem}",
        pack="examples",
        runner_type="python-script",
        entry_point=path.name,
        entry_point_path=path,
        pack_path=path.parent.parent,
        **fields,
    )


def succeeded(path: Path, **fields: Any) -> Any:
    """Run the action at ``path`` and return its result, which must be a success."""
    outcome = run(PythonRunner(make_request(path, **fields), Recorder()))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    return outcome.result["result"]


def run(runner: PythonRunner) -> RunnerOutcome:
    runner.pre_run()
    outcome = runner.run()
    runner.post_run(outcome)
    return outcome


def test_registered_as_python_script() -> None:
    spec = runner_types()["python-script"]
    assert spec.output_key == "result"
    assert spec.runner_parameters["timeout"]["default"] == 600
    assert spec.runner_parameters["log_level"]["default"] == "DEBUG"
    assert set(spec.runner_parameters) == {
        "debug",
        "content_version",
        "env",
        "timeout",
        "log_level",
    }
    assert runner_class("python-script") is PythonRunner


def test_content_version_is_refused_not_ignored(tmp_path: Path) -> None:
    path = write_action(tmp_path, "noop", "def run():\n    pass\n")
    request = make_request(path, runner_parameters={"content_version": "v1.0.0"})
    with pytest.raises(ValidationError, match="content_version is not supported"):
        PythonRunner(request, Recorder()).pre_run()


def test_the_compat_package_is_only_for_actions() -> None:
    assert importlib.util.find_spec("st2common") is None


def test_success_returns_result_and_output(tmp_path: Path) -> None:
    path = write_action(
        tmp_path,
        "double",
        """
        from st2common.runners.base_action import Action

        class Double(Action):
            def run(self, number):
                print("doubling", number)
                self.logger.info("region is %s", self.config["region"])
                return {"doubled": number * 2}
        """,
    )
    sink = Recorder()
    request = make_request(path, action_parameters={"number": 21}, pack_config={"region": "eu"})
    outcome = run(PythonRunner(request, sink))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    result = outcome.result
    assert result["result"] == {"doubled": 42}
    assert result["stdout"] == "doubling 21\n"
    assert result["exit_code"] == 0
    assert "INFO actions.python.Double [-] region is eu" in result["stderr"]
    assert ("stdout", "doubling 21\n") in sink.lines
    assert any(kind == "stderr" and "region is eu" in data for kind, data in sink.lines)


def test_run_gets_every_declared_parameter_unset_ones_as_none(tmp_path: Path) -> None:
    # StackStorm's examples.python-mock-core-remote declares run(self, cmd, hosts, hosts_dict)
    # with all three optional; orquesta-test-field-escaping gives it only hosts_dict.
    path = write_action(
        tmp_path,
        "mock_remote",
        """
        from st2common.runners.base_action import Action

        class MockRemote(Action):
            def run(self, cmd, hosts, hosts_dict):
                return {"cmd": cmd, "hosts": hosts, "hosts_dict": hosts_dict}
        """,
    )
    schema = {
        "cmd": {"type": "string"},
        "hosts": {"type": "string"},
        "hosts_dict": {"type": "object"},
        "timeout": runner_types()["python-script"].runner_parameters["timeout"],
    }
    request = make_request(
        path,
        parameter_schema=schema,
        runner_parameters={"timeout": 600},
        action_parameters={"hosts_dict": {"host.domain.tld": "up"}},
    )
    outcome = run(PythonRunner(request, Recorder()))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == {
        "cmd": None,
        "hosts": None,
        "hosts_dict": {"host.domain.tld": "up"},
    }


def test_config_defaults_to_an_empty_dict(tmp_path: Path) -> None:
    path = write_action(
        tmp_path,
        "show_config",
        """
        from st2common.runners.base_action import Action

        class ShowConfig(Action):
            def run(self):
                return {"config": self.config, "has_service": self.action_service is not None}
        """,
    )
    outcome = run(PythonRunner(make_request(path), Recorder()))
    assert outcome.status is ExecutionStatus.SUCCEEDED
    assert outcome.result["result"] == {"config": {}, "has_service": True}


@pytest.mark.parametrize(
    ("returned", "status", "result"),
    [
        ("(False, {'reason': 'disk full'})", ExecutionStatus.FAILED, {"reason": "disk full"}),
        ("(True, 'fine')", ExecutionStatus.SUCCEEDED, "fine"),
        ("[1, 2]", ExecutionStatus.SUCCEEDED, [1, 2]),
        ("None", ExecutionStatus.SUCCEEDED, None),
    ],
)
def test_status_tuple(
    tmp_path: Path, returned: str, status: ExecutionStatus, result: object
) -> None:
    path = write_action(
        tmp_path,
        "tuple_result",
        f"""
        from st2common.runners.base_action import Action

        class TupleResult(Action):
            def run(self):
                return {returned}
        """,
    )
    outcome = run(PythonRunner(make_request(path), Recorder()))
    assert outcome.status is status
    assert outcome.result["result"] == result
    assert outcome.result["exit_code"] == 0


def test_exception_fails_with_the_traceback(tmp_path: Path) -> None:
    path = write_action(
        tmp_path,
        "explode",
        """
        from st2common.runners.base_action import Action

        class Explode(Action):
            def run(self):
                print("about to fail")
                raise RuntimeError("boom")
        """,
    )
    outcome = run(PythonRunner(make_request(path), Recorder()))
    assert outcome.status is ExecutionStatus.FAILED
    assert outcome.result["exit_code"] == 1
    assert outcome.result["result"] is None
    assert outcome.result["stdout"] == "about to fail\n"
    assert "Traceback (most recent call last)" in outcome.result["stderr"]
    assert "RuntimeError: boom" in outcome.result["stderr"]


def test_a_module_without_one_action_class_fails(tmp_path: Path) -> None:
    path = write_action(tmp_path, "empty", "VALUE = 1\n")
    outcome = run(PythonRunner(make_request(path), Recorder()))
    assert outcome.status is ExecutionStatus.FAILED
    assert "defines no action class" in outcome.result["stderr"]


def test_a_class_with_run_that_does_not_subclass_action_is_the_action(tmp_path: Path) -> None:
    # The Exchange's jira pack defines its own Action base; StackStorm's loader takes the first
    # class (by name) of the file that implements run, and so does ours.
    path = write_action(
        tmp_path,
        "own_base",
        """
        class Action(object):
            def __init__(self, config):
                self.config = config

        class ZHelper(object):
            def run(self):
                return "not me"

        class GetIssue(Action):
            def run(self, key):
                return {"key": key, "config": self.config}
        """,
    )
    assert succeeded(path, action_parameters={"key": "PC-1"}) == {"key": "PC-1", "config": {}}


def test_helpers_and_intermediate_bases_are_not_the_action(tmp_path: Path) -> None:
    library = tmp_path / "packs" / "examples" / "actions" / "lib"
    library.mkdir(parents=True)
    (library / "__init__.py").write_text("")
    (library / "helpers.py").write_text("PREFIX = 'from lib'\n")
    path = write_action(
        tmp_path,
        "layered",
        """
        from st2common.runners.base_action import Action
        from lib.helpers import PREFIX

        class Base(Action):
            def greet(self):
                return PREFIX

        class Layered(Base):
            def run(self):
                return self.greet()
        """,
    )
    outcome = run(PythonRunner(make_request(path), Recorder()))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == "from lib"


def test_missing_entry_point_is_refused_before_running(tmp_path: Path) -> None:
    runner = PythonRunner(make_request(tmp_path / "absent.py"), Recorder())
    with pytest.raises(ValidationError, match="is not a file"):
        runner.pre_run()


def test_env_parameter_log_level_and_unserialisable_results(tmp_path: Path) -> None:
    path = write_action(
        tmp_path,
        "environment",
        """
        import datetime
        import os
        from st2common.runners.base_action import Action

        class Environment(Action):
            def run(self):
                self.logger.debug("hidden debug line")
                self.logger.warning("visible warning line")
                return {
                    "greeting": os.environ["GREETING"],
                    "pack": os.environ["ST2_ACTION_PACK_NAME"],
                    "when": datetime.date(2024, 5, 1),
                }
        """,
    )
    request = make_request(
        path, runner_parameters={"env": {"GREETING": "hi"}, "log_level": "WARNING"}
    )
    outcome = run(PythonRunner(request, Recorder()))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    result = outcome.result["result"]
    assert result["greeting"] == "hi"
    assert result["pack"] == "examples"
    assert result["when"] == "datetime.date(2024, 5, 1)"
    assert "visible warning line" in outcome.result["stderr"]
    assert "hidden debug line" not in outcome.result["stderr"]


def test_output_streams_while_the_action_runs(tmp_path: Path) -> None:
    marker = tmp_path / "first-line-seen"

    def on_line(kind: str, data: str) -> None:
        if data == "first\n":
            marker.touch()

    path = write_action(
        tmp_path,
        "chatty",
        f"""
        import os
        import time
        from st2common.runners.base_action import Action

        class Chatty(Action):
            def run(self):
                print("first")
                deadline = time.monotonic() + 20
                while not os.path.exists({str(marker)!r}):
                    if time.monotonic() > deadline:
                        return "first line was not streamed"
                    time.sleep(0.05)
                print("second")
                return "streamed"
        """,
    )
    sink = Recorder(on_line)
    outcome = run(PythonRunner(make_request(path), sink))
    assert outcome.status is ExecutionStatus.SUCCEEDED
    assert outcome.result["result"] == "streamed"
    assert [data for kind, data in sink.lines if kind == "stdout"] == ["first\n", "second\n"]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    path = write_action(
        tmp_path,
        "sleepy",
        f"""
        import pathlib
        import subprocess
        import time
        from st2common.runners.base_action import Action

        class Sleepy(Action):
            def run(self):
                child = subprocess.Popen(["sleep", "60"])
                pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))
                print("sleeping", flush=True)
                time.sleep(60)
        """,
    )
    sink = Recorder()
    started = time.monotonic()
    outcome = run(PythonRunner(make_request(path, timeout=3), sink))
    assert time.monotonic() - started < 15
    assert outcome.status is ExecutionStatus.TIMEOUT
    assert outcome.result["error"] == "Action failed to complete in 3 seconds"
    assert outcome.result["exit_code"] == -9
    assert outcome.result["stdout"] == "sleeping\n"
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)


def test_timeout_parameter_is_used_without_a_request_timeout(tmp_path: Path) -> None:
    path = write_action(
        tmp_path,
        "slow",
        """
        import time
        from st2common.runners.base_action import Action

        class Slow(Action):
            def run(self):
                time.sleep(60)
        """,
    )
    request = make_request(path, runner_parameters={"timeout": 2})
    outcome = run(PythonRunner(request, Recorder()))
    assert outcome.status is ExecutionStatus.TIMEOUT
    assert outcome.result["error"] == "Action failed to complete in 2 seconds"


def test_cancel_from_another_thread(tmp_path: Path) -> None:
    path = write_action(
        tmp_path,
        "waiter",
        """
        import time
        from st2common.runners.base_action import Action

        class Waiter(Action):
            def run(self):
                print("started", flush=True)
                time.sleep(60)
        """,
    )
    sink = Recorder()
    runner = PythonRunner(make_request(path), sink)

    def cancel_when_started() -> None:
        assert sink.wait_for("started")
        runner.cancel()

    canceller = threading.Thread(target=cancel_when_started)
    canceller.start()
    started = time.monotonic()
    outcome = run(runner)
    canceller.join()
    assert time.monotonic() - started < 15
    assert outcome.status is ExecutionStatus.CANCELED
    assert outcome.result["stdout"] == "started\n"


def test_cancel_before_run_starts_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write_action(
        tmp_path,
        "never",
        f"""
        import pathlib
        from st2common.runners.base_action import Action

        class Never(Action):
            def run(self):
                pathlib.Path({str(marker)!r}).touch()
        """,
    )
    runner = PythonRunner(make_request(path), Recorder())
    runner.cancel()
    outcome = run(runner)
    assert outcome.status is ExecutionStatus.CANCELED
    assert not marker.exists()


def test_datastore_from_inside_the_action(tmp_path: Path, scratch_database: str) -> None:
    config = engine_config(tmp_path, database=scratch_database)
    engine = make_st2_engine(config, pool_size=1)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        service.set_value(session, name="shared", value="from-the-test")
    path = write_action(
        tmp_path,
        "store",
        """
        from st2common.runners.base_action import Action

        class Store(Action):
            def run(self):
                service = self.action_service
                service.set_value("counter", "1")
                service.set_value("mine", "u", scope="user")
                service.set_value("token", "hunter2", encrypt=True)
                service.set_value("temporary", "t", ttl=600)
                return {
                    "shared": service.get_value("shared", local=False),
                    "shared_local": service.get_value("shared"),
                    "counter": service.get_value("counter"),
                    "mine": service.get_value("mine", scope="user"),
                    "token": service.get_value("token", decrypt=True),
                    "token_masked": service.get_value("token") != "hunter2",
                    "listed": [item["name"] for item in service.list_values()],
                    "deleted": service.delete_value("counter"),
                    "deleted_again": service.delete_value("counter"),
                }
        """,
    )
    request = make_request(path, user="alice")
    services = RunnerServices(config_file=Path(config.source))
    outcome = run(PythonRunner(request, Recorder(), services))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == {
        "shared": "from-the-test",
        "shared_local": None,
        "counter": "1",
        "mine": "u",
        "token": "hunter2",
        "token_masked": True,
        "listed": [
            "examples.Store:counter",
            "examples.Store:temporary",
            "examples.Store:token",
        ],
        "deleted": True,
        "deleted_again": False,
    }
    with factory() as session:
        rows = {(r.scope, r.name): r for r in session.scalars(sa.select(KeyValuePairDB))}
    engine.dispose()
    assert set(rows) == {
        ("st2kv.system", "shared"),
        ("st2kv.user", "alice:examples.Store:mine"),
        ("st2kv.system", "examples.Store:token"),
        ("st2kv.system", "examples.Store:temporary"),
    }
    token = rows[("st2kv.system", "examples.Store:token")]
    assert token.secret and "hunter2" not in token.value
    assert rows[("st2kv.system", "examples.Store:temporary")].expire_timestamp is not None
    assert (tmp_path / "keys" / "datastore.key").stat().st_mode & 0o077 == 0


def test_actions_that_skip_the_datastore_need_no_database(tmp_path: Path) -> None:
    conf = tmp_path / "unreachable.conf"
    conf.write_text("[database]\nbackend = mysql\nhost = 127.0.0.1\nport = 1\ndb_name = nowhere\n")
    path = write_action(
        tmp_path,
        "plain",
        """
        from st2common.runners.base_action import Action

        class Plain(Action):
            def run(self):
                return "no database needed"
        """,
    )
    services = RunnerServices(config_file=conf)
    outcome = run(PythonRunner(make_request(path), Recorder(), services))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == "no database needed"
    assert os.environ.get("ST2_CONFIG_PATH") != str(conf)


def test_action_files_do_not_shadow_the_wrappers_modules(tmp_path: Path) -> None:
    path = write_action(
        tmp_path,
        "json",
        """
        from st2common.runners.base_action import Action

        class Json(Action):
            def run(self):
                return {"module": __name__}
        """,
    )
    outcome = run(PythonRunner(make_request(path), Recorder()))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == {"module": "_pack_action_json"}


def make_virtualenv(root: Path, pack: str) -> Path:
    """A real virtualenv of our interpreter (without pip, so no download), as setup makes it."""
    path = root / pack
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def test_the_action_runs_in_its_packs_virtualenv_whose_libraries_win(tmp_path: Path) -> None:
    virtualenvs = tmp_path / "virtualenvs"
    venv = make_virtualenv(virtualenvs, "examples")
    [site_packages] = (venv / "lib").glob("python3*/site-packages")
    # The engine has its own xmltodict; the pack's copy must win.
    (site_packages / "xmltodict.py").write_text("__version__ = 'the pack pinned this'\n")
    path = write_action(
        tmp_path,
        "where",
        """
        import os
        import sys

        import xmltodict
        from st2common.runners.base_action import Action

        class Where(Action):
            def run(self):
                return {
                    "prefix": sys.prefix,
                    "xmltodict": xmltodict.__version__,
                    "path": os.environ["PATH"].split(":")[0],
                }
        """,
    )
    services = RunnerServices(virtualenvs=virtualenvs)
    outcome = run(PythonRunner(make_request(path), Recorder(), services))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == {
        "prefix": str(venv),
        "xmltodict": "the pack pinned this",
        "path": str(venv / "bin"),
    }


def test_an_incomplete_virtualenv_fails_the_action_and_names_the_fix(tmp_path: Path) -> None:
    virtualenvs = tmp_path / "virtualenvs"
    venv = make_virtualenv(virtualenvs, "examples")
    (venv / INCOMPLETE_MARKER).write_text("")
    path = write_action(
        tmp_path,
        "never_runs",
        """
        from st2common.runners.base_action import Action

        class NeverRuns(Action):
            def run(self):
                return "ran"
        """,
    )
    runner = PythonRunner(make_request(path), Recorder(), RunnerServices(virtualenvs=virtualenvs))
    with pytest.raises(VirtualenvError, match=r"packs\.setup_virtualenv packs=examples"):
        runner.pre_run()


def test_a_status_that_is_not_a_boolean_fails_as_in_stackstorm(tmp_path: Path) -> None:
    path = write_action(
        tmp_path,
        "bad_status",
        """
        from st2common.runners.base_action import Action

        class BadStatus(Action):
            def run(self):
                return ("yes", {"kept": 1})
        """,
    )
    outcome = run(PythonRunner(make_request(path), Recorder()))
    assert outcome.status is ExecutionStatus.FAILED
    assert outcome.result["exit_code"] == 220
    assert outcome.result["error"].startswith(
        "Status returned from the action run() method must either be True or False, got: yes"
    )


def test_stackstorm_action_conventions(tmp_path: Path) -> None:
    path = write_action(
        tmp_path,
        "conventions",
        """
        from st2common.runners.base_action import Action

        class Conventions(Action):
            description = "old style"

            def __init__(self, config):
                super().__init__(config)

            def run(self):
                try:
                    self.config["absent"]
                except ValueError as error:
                    missing = str(error).splitlines()[0]
                return (None, {
                    "missing": missing,
                    "service": type(self.action_service).__name__,
                    "user": self.action_service.get_user_info()["username"],
                    "logger": self.logger.name,
                    "unserializable": None,
                })
        """,
    )
    request = make_request(path, user="alice")
    outcome = run(PythonRunner(request, Recorder()))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == {
        # A constructor without action_service gets it only afterwards: StackStorm then names
        # the pack "unknown" too.
        "missing": 'Config for pack "unknown" is missing key "absent".',
        "service": "ActionService",
        "user": "alice",
        "logger": "actions.python.Conventions",
        "unserializable": None,
    }


def test_an_unserializable_result_with_a_status_becomes_text(tmp_path: Path) -> None:
    path = write_action(
        tmp_path,
        "opaque",
        """
        from st2common.runners.base_action import Action

        class Opaque:
            def __str__(self):
                return "an opaque object"

        class ReturnsObject(Action):
            def run(self):
                return (True, Opaque())
        """,
    )
    outcome = run(PythonRunner(make_request(path), Recorder()))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == "an opaque object"


def test_the_packs_common_library_with_enable_common_libs(tmp_path: Path) -> None:
    path = write_action(
        tmp_path,
        "uses_common",
        """
        from st2common.runners.base_action import Action

        class UsesCommon(Action):
            def run(self):
                from environ import where
                return where()
        """,
    )
    common = path.parent.parent / "lib"
    common.mkdir()
    (common / "environ.py").write_text("def where():\n    return 'the pack lib'\n")
    disabled = run(PythonRunner(make_request(path), Recorder()))
    assert disabled.status is ExecutionStatus.FAILED
    assert "No module named 'environ'" in disabled.result["stderr"]
    services = RunnerServices(pack_common_libs=True)
    enabled = run(PythonRunner(make_request(path), Recorder(), services))
    assert enabled.status is ExecutionStatus.SUCCEEDED, enabled.result
    assert enabled.result["result"] == "the pack lib"


def system_user_conf(directory: Path, server: SshServer) -> Path:
    """An st2.conf whose system user logs in to ``server`` with its key."""
    conf = directory / "st2.conf"
    conf.write_text(
        f"[system_user]\nuser = {server.username}\nssh_key_file = {server.private_key_path}\n"
    )
    return conf


def test_stackstorms_wait_for_ssh_with_oslo_config_and_paramiko_ssh(tmp_path: Path) -> None:
    # StackStorm's linux.wait_for_ssh, reduced to its imports and calls: cfg.CONF supplies the
    # system user's key file and ParamikoSSHClient connects with it.
    with running_sshd(tmp_path / "sshd") as server:
        conf = system_user_conf(tmp_path, server)
        path = write_action(
            tmp_path,
            "wait_for_ssh",
            """
            from oslo_config import cfg
            from st2common.runners.base_action import Action
            from st2common.runners.paramiko_ssh import ParamikoSSHClient

            class WaitForSsh(Action):
                def run(self, hostname, port):
                    keyfile = cfg.CONF.system_user.ssh_key_file
                    client = ParamikoSSHClient(hostname=hostname, port=port, timeout=5)
                    client.connect()
                    stdout, stderr, status = client.run("echo reached")
                    client.close()
                    try:
                        cfg.CONF.system_user.no_such_option
                    except AttributeError as error:
                        missing = str(error)
                    return {"keyfile": keyfile, "stdout": stdout, "status": status,
                            "missing": missing}
            """,
        )
        request = make_request(
            path, action_parameters={"hostname": server.host, "port": server.port}
        )
        services = RunnerServices(config_file=conf)
        outcome = run(PythonRunner(request, Recorder(), services))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == {
        "keyfile": str(server.private_key_path),
        "stdout": "reached",  # StackStorm strips the trailing newline
        "status": 0,
        "missing": "no such option [system_user] no_such_option in st2.conf",
    }


def test_paramiko_ssh_client_files_timeouts_and_line_handlers(tmp_path: Path) -> None:
    # StackStorm's ParamikoSSHClient beyond run(): SFTP file methods, a command timeout and the
    # per-line output handlers, against a real sshd.
    upload = tmp_path / "upload"
    (upload / "nested").mkdir(parents=True)
    (upload / "top.sh").write_text("echo top\n")
    (upload / "top.sh").chmod(0o750)
    (upload / "nested" / "inner.txt").write_text("inner\n")
    remote = tmp_path / "remote"
    remote.mkdir()
    with running_sshd(tmp_path / "sshd") as server:
        conf = system_user_conf(tmp_path, server)
        path = write_action(
            tmp_path,
            "files",
            """
            import os
            from st2common.runners.base_action import Action
            from st2common.runners.paramiko_ssh import ParamikoSSHClient, SSHCommandTimeoutError

            class Files(Action):
                def run(self, hostname, port, upload, remote):
                    lines = {"out": [], "err": []}
                    client = ParamikoSSHClient(
                        hostname=hostname, port=port, timeout=10,
                        handle_stdout_line_func=lambda line: lines["out"].append(line),
                        handle_stderr_line_func=lambda line: lines["err"].append(line),
                    )
                    client.connect()
                    report = {}
                    single = os.path.join(remote, "single.sh")
                    attributes = client.put(os.path.join(upload, "top.sh"), single, mode="0700")
                    report["put_mode"] = oct(attributes.st_mode & 0o7777)
                    report["exists"] = [client.exists(single), client.exists(single + ".no")]
                    tree = client.put_dir(upload, remote, mirror_local_mode=True)
                    report["put_dir"] = len(tree)
                    copied = os.path.join(remote, "upload")
                    report["mirrored"] = [
                        oct(os.stat(os.path.join(copied, "top.sh")).st_mode & 0o7777),
                        open(os.path.join(copied, "nested", "inner.txt")).read(),
                    ]
                    client.mkdir(os.path.join(remote, "made"))
                    report["delete_file"] = client.delete_file(single)
                    report["delete_dir"] = client.delete_dir(os.path.join(remote, "made"))
                    report["run"] = client.run(
                        "printf 'one\\ntw'; sleep 0.2; printf 'o\\nthree\\n'; echo oops >&2",
                        call_line_handler_func=True,
                    )
                    report["lines"] = lines
                    try:
                        client.run("echo started; sleep 30", timeout=1)
                    except SSHCommandTimeoutError as error:
                        report["timeout"] = [error.stdout, error.message]
                    forced = client.delete_dir(os.path.join(remote, "upload"), force=True)
                    report["forced"] = forced
                    client.close()
                    return report
            """,
        )
        request = make_request(
            path,
            action_parameters={
                "hostname": server.host,
                "port": server.port,
                "upload": str(upload),
                "remote": str(remote),
            },
        )
        outcome = run(PythonRunner(request, Recorder(), RunnerServices(config_file=conf)))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    report = outcome.result["result"]
    assert report["put_mode"] == "0o700"
    assert report["exists"] == [True, False]
    assert report["put_dir"] == 2
    assert report["mirrored"] == ["0o750", "inner\n"]
    assert report["delete_file"] is True and report["delete_dir"] is True
    assert report["run"] == ["one\ntwo\nthree", "oops", 0]
    assert report["lines"] == {"out": ["one\n", "two\n", "three\n"], "err": ["oops\n"]}
    assert report["timeout"] == [
        "started",
        "Command didn't finish in 1 seconds or the SSH connection did not succeed in 10.0 seconds",
    ]
    assert report["forced"] == ["", "", 0]
    # put_dir copied the tree with the local modes; the forced delete removed it.
    assert not (remote / "upload").exists()
    assert not (remote / "single.sh").exists() and not (remote / "made").exists()


def test_eventlet_is_there_for_pack_code_as_on_stackstorm(tmp_path: Path) -> None:
    # StackStorm's examples.python-mock-create-vm imports eventlet without declaring it: pack
    # code sees StackStorm's own libraries there, and the engine's here.
    path = write_action(
        tmp_path,
        "mock_create_vm",
        """
        import eventlet
        from st2common.runners.base_action import Action

        class MockCreateVM(Action):
            def run(self, vm_name):
                eventlet.sleep(0.01)
                return {"vm_name": vm_name}
        """,
    )
    request = make_request(path, action_parameters={"vm_name": "vm1"})
    outcome = run(PythonRunner(request, Recorder()))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == {"vm_name": "vm1"}
    assert "DSA is deprecated" not in outcome.result["stderr"], "dnspython's import noise"


def test_eventlet_is_importable_without_the_pack_listing_it(tmp_path: Path) -> None:
    # StackStorm's examples.python-mock-create-vm and many Exchange sensors import eventlet
    # without listing it, because StackStorm hands pack code its own libraries.
    virtualenvs = tmp_path / "virtualenvs"
    make_virtualenv(virtualenvs, "examples")
    path = write_action(
        tmp_path,
        "green",
        """
        import eventlet
        from st2common.runners.base_action import Action

        class Green(Action):
            def run(self):
                eventlet.sleep(0.01)
                return "slept"
        """,
    )
    services = RunnerServices(virtualenvs=virtualenvs)
    outcome = run(PythonRunner(make_request(path), Recorder(), services))
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == "slept"


def test_st2common_isotime_as_exchange_packs_use_it(tmp_path: Path) -> None:
    # The Exchange's github actions format PyGithub's naive UTC datetimes with it; its aws
    # sensor parses CloudTrail's eventTime.
    path = write_action(
        tmp_path,
        "times",
        """
        import datetime

        from st2common.runners.base_action import Action
        from st2common.util import isotime
        from st2common.util.date import get_datetime_utc_now

        class Times(Action):
            def run(self):
                naive = datetime.datetime(2024, 5, 1, 12, 30, 15, 250000)
                parsed = isotime.parse("2024-05-01T12:30:15Z")
                try:
                    isotime.parse("yesterday")
                    refused = None
                except ValueError as error:
                    refused = str(error)
                return {
                    "naive": isotime.format(naive),
                    "short": isotime.format(naive, usec=False, offset=False),
                    "epoch": isotime.format(0),
                    "parsed": isotime.format(parsed, usec=False),
                    "aware": get_datetime_utc_now().tzinfo is not None,
                    "refused": refused,
                }
        """,
    )
    assert succeeded(path) == {
        "naive": "2024-05-01T12:30:15.250000+00:00",
        "short": "2024-05-01T12:30:15Z",
        "epoch": "1970-01-01T00:00:00.000000+00:00",
        "parsed": "2024-05-01T12:30:15+00:00",
        "aware": True,
        "refused": "Datetime value does not match expected format.",
    }
