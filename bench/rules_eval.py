"""Rule criteria evaluation: trigger instance x rule evaluations per second on one core.

Builds 100 realistic rules on the webhook trigger (equals, regex, iregex, contains, lt, gt,
exists, nexists, inside, search, matchwildcard, startswith, endswith; one in ten has a pattern
rendered from ``st2kv.system``) and 200 varied payloads (Alertmanager webhooks with one to five
alerts, GitHub pushes, deploy and error-rate events), then reports:

* the compile cost of the 100 rules;
* evaluations per second (CPU time and wall time) of every payload against every rule, as the
  rules engine does: templated patterns rendered with the engine's ``render_string`` over the
  rules engine's own render context (``datastore_context`` on a session: every
  ``st2kv.system`` key read from ``keyvalue_db`` in a scratch MariaDB database when used);
  then the static rules only and the templated rules only.

The goal is on wall time, which counts the datastore's round trips: 100,000 evaluations per
second, what ``bench/sensors.py``'s goal (1,000 trigger instances per second) asks of a rules
engine with these 100 rules on the trigger.

Usage: .venv/bin/python bench/rules_eval.py [--seconds 3]
Needs MariaDB (root on 127.0.0.1) for the datastore, like the test suite.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import load_average  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from tests.integration.support.mariadb import create_fixture_database, drop_fixture_database  # noqa: E402

from poundcake.config import load_st2_config  # noqa: E402
from poundcake.db.engine import make_st2_engine  # noqa: E402
from poundcake.db.migrate import setup_engine_schema  # noqa: E402
from poundcake.db.session import make_session_factory, unit_of_work  # noqa: E402
from poundcake.engine.keyvalue.lookup import datastore_context  # noqa: E402
from poundcake.engine.keyvalue.service import set_value  # noqa: E402
from poundcake.engine.rendering import render_string  # noqa: E402
from poundcake.engine.rules.criteria import CompiledCriteria, compile_criteria  # noqa: E402

RULES = 100
PAYLOADS = 200
ALERTNAMES = (
    *("DiskFull", "FilesystemAlmostFull", "HighCPU", "HighMemory", "NodeDown", "PodCrashLooping"),
    *("TargetDown", "CertificateExpiring", "ReplicationLag", "OOMKilled", "SlowQueries"),
)
SEVERITIES = ("critical", "warning", "info", "page")
NAMESPACES = ("prod-eu", "prod-us", "staging", "dev", "monitoring", "kube-system")
TEAMS = ("storage", "db", "web", "platform", "sre")
SERVICES = ("api", "billing", "search", "auth", "frontend", "worker")
DATASTORE = {"deploy_slow_ms": 4000, "namespace": "prod-eu", "error_budget": 0.02, "team": "db"}


def alertmanager_payload(rng: random.Random) -> dict[str, Any]:
    alerts: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 5)):
        name = rng.choice(ALERTNAMES)
        labels = {
            "alertname": name,
            "severity": rng.choice(SEVERITIES),
            "instance": f"{rng.choice(('db', 'web', 'cache', 'node'))}-{rng.randint(1, 40)}:9100",
            "job": rng.choice(("node", "postgres", "nginx", "kubelet")),
            "namespace": rng.choice(NAMESPACES),
            "app.kubernetes.io/name": rng.choice(SERVICES),
        }
        if rng.random() < 0.6:
            labels["team"] = rng.choice(TEAMS)
        alerts.append(
            {
                "status": rng.choice(("firing", "firing", "resolved")),
                "labels": labels,
                "annotations": {
                    "summary": f"{name} on {labels['instance']}",
                    "description": rng.choice(
                        (
                            "Filesystem has less than 5% space left.",
                            "Connection TIMEOUT after 30s talking to upstream.",
                            "Process was Out Of Memory killed.",
                            "Scrape failed: context deadline exceeded.",
                        )
                    ),
                    "runbook_url": f"https://runbooks.example.com/{name.lower()}",
                },
                "startsAt": f"2026-07-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00.1Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
                "fingerprint": f"{rng.getrandbits(64):016x}",
            }
        )
    first = alerts[0]["labels"]
    return {
        "headers": {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.27.0"},
        "body": {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{first["alertname"]}"}}',
            "receiver": "poundcake",
            "status": alerts[0]["status"],
            "alerts": alerts,
            "groupLabels": {"alertname": first["alertname"]},
            "commonLabels": {key: first[key] for key in ("alertname", "severity") if key in first}
            | ({"team": first["team"]} if "team" in first else {}),
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
        },
    }


def event_payload(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(("push", "deploy", "errors"))
    if kind == "push":
        return {
            "headers": {"X-GitHub-Event": "push", "Content-Type": "application/json"},
            "body": {
                "ref": rng.choice(("refs/heads/main", "refs/heads/feature/x", "refs/tags/v1.2")),
                "repository": {"full_name": f"acme/{rng.choice(SERVICES)}", "private": True},
                "pusher": {"name": rng.choice(("alice", "bob", "ci-bot"))},
                "commits": [
                    {"id": f"{rng.getrandbits(40):010x}"} for _ in range(rng.randint(0, 4))
                ],
            },
        }
    body: dict[str, Any] = {
        "event": kind,
        "service": rng.choice(SERVICES),
        "env": rng.choice(("production", "staging")),
        "namespace": rng.choice(NAMESPACES),
    }
    if kind == "deploy":
        body |= {"duration_ms": rng.randint(500, 9000), "version": f"1.{rng.randint(0, 30)}.0"}
    else:
        body |= {"error_rate": round(rng.random() * 0.05, 4), "window": "5m"}
    return {"headers": {"Content-Type": "application/json"}, "body": body}


def payloads(rng: random.Random) -> list[dict[str, Any]]:
    return [
        alertmanager_payload(rng) if rng.random() < 0.7 else event_payload(rng)
        for _ in range(PAYLOADS)
    ]


def criterion(kind: str, pattern: Any = None) -> dict[str, Any]:
    return {"type": kind} if pattern is None else {"type": kind, "pattern": pattern}


RuleShape = Callable[[random.Random], dict[str, Any]]
SHAPES: list[RuleShape] = [
    lambda rng: {
        "trigger.body.status": criterion("equals", "firing"),
        "trigger.body.alerts[0].labels.alertname": criterion("eq", rng.choice(ALERTNAMES)),
    },
    lambda rng: {
        "trigger.body.alerts[0].labels.alertname": criterion("regex", "^(Disk|Filesystem)"),
        "trigger.body.alerts[0].labels.severity": criterion("inside", ["critical", "page"]),
    },
    lambda rng: {
        "trigger.body.alerts[0].annotations.description": criterion("iregex", "out of memory"),
    },
    lambda rng: {
        "trigger.body.alerts[0].annotations.description": criterion("contains", "TIMEOUT"),
        "trigger.body.status": criterion("neq", "resolved"),
    },
    lambda rng: {
        "trigger.body.commonLabels.severity": criterion("eq", rng.choice(SEVERITIES)),
        "trigger.body.commonLabels.team": criterion("exists"),
    },
    lambda rng: {
        "trigger.body.alerts": criterion("search", None)
        | {
            "condition": "any",
            "pattern": {
                "item.labels.severity": criterion("equals", "critical"),
                "item.labels.namespace": criterion("startswith", "prod"),
            },
        },
    },
    lambda rng: {
        "trigger.body.alerts[*].labels.instance": criterion("matchwildcard", "db-*:9100"),
        "trigger.body.alerts[0].labels.job": criterion("eq", "postgres"),
    },
    lambda rng: {
        "trigger.headers['X-GitHub-Event']": criterion("eq", "push"),
        "trigger.body.ref": criterion("endswith", "/main"),
        "trigger.body.pusher.name": criterion("nin", ["ci-bot"]),
    },
    lambda rng: {
        "trigger.body.event": criterion("eq", "deploy"),
        "trigger.body.duration_ms": criterion("gt", rng.choice((3000, 5000, 8000))),
    },
    lambda rng: {
        "trigger.body.event": criterion("eq", "errors"),
        "trigger.body.error_rate": criterion("lt", 0.01),
        "trigger.body.env": criterion("ieq", "PRODUCTION"),
    },
    lambda rng: {
        'trigger.body.alerts[0].labels."app.kubernetes.io/name"': criterion(
            "in", list(rng.sample(SERVICES, 2))
        ),
        "trigger.body.alerts[0].endsAt": criterion("nexists"),
    },
    lambda rng: {
        "trigger.body.alerts[0].labels.team": criterion("icontains", rng.choice(TEAMS)),
        "trigger.body.receiver": criterion("eq", "poundcake"),
    },
]
TEMPLATED_SHAPES: list[RuleShape] = [
    lambda rng: {
        "trigger.body.event": criterion("eq", "deploy"),
        "trigger.body.duration_ms": criterion("gt", "{{ st2kv.system.deploy_slow_ms }}"),
    },
    lambda rng: {
        "trigger.body.alerts[0].labels.namespace": criterion("eq", "{{ st2kv.system.namespace }}"),
    },
    lambda rng: {
        "trigger.body.error_rate": criterion("gt", "{{ st2kv.system.error_budget }}"),
    },
    lambda rng: {
        "trigger.body.alerts[0].labels.team": criterion("regex", "^{{ st2kv.system.team }}$"),
    },
]


def rule_criteria(rng: random.Random) -> list[dict[str, Any]]:
    rules = [rng.choice(TEMPLATED_SHAPES)(rng) for _ in range(RULES // 10)]
    rules += [rng.choice(SHAPES)(rng) for _ in range(RULES - len(rules))]
    rng.shuffle(rules)
    return rules


GOAL = 100_000.0


def engine_renderer(session: Session) -> Callable[[str], Any]:
    """Render a pattern as the rules engine's batch does: ``render_string`` over
    ``datastore_context`` (each ``st2kv`` key read from the database when used)."""
    context = datastore_context(session, user="stanley", cipher=None)
    return lambda template: render_string(template, context)


@contextmanager
def scratch_datastore(workdir: Path) -> Iterator[Session]:
    """A session on a scratch MariaDB database whose datastore holds ``DATASTORE``."""
    database = f"pcbench_rules_{uuid.uuid4().hex[:8]}"
    create_fixture_database(database)
    conf = workdir / "st2.conf"
    conf.write_text(
        f"[database]\nbackend = mysql\nhost = 127.0.0.1\nusername = root\ndb_name = {database}\n"
    )
    db_engine = None
    try:
        config = load_st2_config(conf)
        setup_engine_schema(config)
        db_engine = make_st2_engine(config, pool_size=1)
        sessions = make_session_factory(db_engine)
        with unit_of_work(sessions) as session:
            for name, value in DATASTORE.items():
                set_value(session, name=name, value=str(value))
        with sessions() as session:
            yield session
    finally:
        if db_engine is not None:
            db_engine.dispose()
        drop_fixture_database(database)


def is_templated(criteria: dict[str, Any]) -> bool:
    return any("{{" in str(spec.get("pattern")) for spec in criteria.values())


def measure_compile(rules: list[dict[str, Any]], seconds: float) -> tuple[int, float]:
    """Compile every rule repeatedly; return rules compiled and CPU seconds spent."""
    compiled = 0
    started = time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for criteria in rules:
            compile_criteria(criteria)
        compiled += len(rules)
    return compiled, time.process_time() - started


def measure(
    rules: list[CompiledCriteria],
    samples: list[dict[str, Any]],
    render: Callable[[str], Any],
    seconds: float,
) -> tuple[int, int, float, float]:
    """Evaluate every payload against every rule for ``seconds``; return the counts and times."""
    evaluations = matched = 0
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    deadline = wall_started + seconds
    while time.perf_counter() < deadline:
        for payload in samples:
            for criteria in rules:
                if criteria.matches(payload, render):
                    matched += 1
            evaluations += len(rules)
    wall = time.perf_counter() - wall_started
    return evaluations, matched, time.process_time() - cpu_started, wall


def report(label: str, figures: tuple[int, int, float, float]) -> None:
    evaluations, matched, cpu, wall = figures
    print(
        f"  {label:<46} {evaluations:>11,} {evaluations / cpu:>12,.0f} {evaluations / wall:>12,.0f}"
        f" {cpu / evaluations * 1e6:>8.2f} {matched / evaluations:>7.1%}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()

    rng = random.Random(42)
    samples = payloads(rng)
    sources = rule_criteria(rng)
    templated = [is_templated(criteria) for criteria in sources]
    print(
        f"{len(sources)} rules ({sum(templated)} templated, "
        f"{sum(len(criteria) for criteria in sources)} criteria) x {len(samples)} payloads"
    )

    compiled_count, compile_cpu = measure_compile(sources, min(options.seconds, 1.0))
    print(f"  compile: {compile_cpu / compiled_count * 1e6:.1f} us per rule (CPU)")

    rules = [compile_criteria(criteria) for criteria in sources]
    static = [rule for rule, flag in zip(rules, templated, strict=True) if not flag]
    dynamic = [rule for rule, flag in zip(rules, templated, strict=True) if flag]
    print(
        f"  {'evaluations (trigger x rule)':<46} {'count':>11} {'per CPU s':>12} "
        f"{'per wall s':>12} {'us/eval':>8} {'matched':>7}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-rules-") as workdir,
        scratch_datastore(Path(workdir)) as session,
    ):
        render = engine_renderer(session)
        everything = measure(rules, samples, render, options.seconds)
        report("all rules", everything)
        report("static rules only", measure(static, samples, render, options.seconds))
        report("templated rules only", measure(dynamic, samples, render, options.seconds))
    print(f"  {load_average()}")
    if options.json:
        evaluations, _, cpu, wall = everything
        figures = [
            {
                "figure": "evaluations per wall second, all rules (datastore read)",
                "value": evaluations / wall,
                "unit": "/s",
                "goal": GOAL,
                "better": "higher",
            },
            {"figure": "evaluations per CPU second, all rules", "value": evaluations / cpu}
            | {"unit": "/s", "better": "higher"},
        ]
        options.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
