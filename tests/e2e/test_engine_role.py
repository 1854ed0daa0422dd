"""End to end with the engine's RBAC on: PoundCake's engine API key comes from ``poundcake
engine-key`` and holds only the ``poundcake`` role, and still remediates a real Alertmanager
alert through a CAB whose steps run actions of other packs; the key is refused what the role
does not grant, with StackStorm's 403 messages; a second ``engine-key`` changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from poundcake.remediation.tracking.stream import REFUSED_MESSAGE
from tests.e2e.stack import Product, running_product
from tests.e2e.test_alertmanager_remediation import CABS as REMEDIATION_CABS
from tests.e2e.test_guards import asked, fire

# The remediation test's disk_full CAB (core.local then core.echo), on an alert of its own.
CABS: dict[str, dict[str, Any]] = {
    "disk_full": {**REMEDIATION_CABS["disk_full"], "alert_name_pattern": "^E2ERoleDiskFull$"},
    "gated": {
        "name": "gated",
        "alert_name_pattern": "^E2ERoleGated$",
        "approval": "required",
        "steps": [{"action": "core.echo", "parameters": {"message": "approved"}}],
    },
}
KEY_USER = "poundcake"


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    with running_product(tmp_path_factory.mktemp("e2e-role"), CABS, rbac=True) as running:
        yield running


def key_file(product: Product) -> str:
    return (product.directory / "poundcake" / "secrets" / "st2-api-key").read_text().strip()


def as_poundcake(product: Product, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Call st2api with PoundCake's own key (the one ``poundcake engine-key`` wrote)."""
    return httpx.request(
        method,
        product.engine.api_url + path,
        headers={"St2-Api-Key": key_file(product)},
        timeout=30,
        **kwargs,
    )


def refused(response: httpx.Response, message: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["faultstring"] == message, response.text


def role_state(product: Product) -> tuple[Any, ...]:
    role = product.engine_api("GET", "/rbac/roles/poundcake")
    assert role.status_code == 200, role.text
    assignments = product.engine_api("GET", "/rbac/role_assignments", params={"user": KEY_USER})
    assert assignments.status_code == 200, assignments.text
    return role.json(), sorted((row["id"], row["role"]) for row in assignments.json())


def test_engine_key_gave_its_user_the_poundcake_role_alone(product: Product) -> None:
    assert "roles/poundcake.yaml" in product.engine_key_output
    assert f"assignments/{KEY_USER}.yaml" in product.engine_key_output
    assert f'user "{KEY_USER}" holds the role "poundcake" alone' in product.engine_key_output
    me = as_poundcake(product, "GET", "/user")
    assert me.status_code == 200, me.text
    assert me.json()["username"] == KEY_USER
    assert me.json()["rbac"] == {"enabled": True, "roles": ["poundcake"], "is_admin": False}


def test_an_alert_is_remediated_through_a_cab_with_the_role_alone(product: Product) -> None:
    # The CAB pack was applied by `poundcake cabs apply` with this key (running_product).
    rules = product.engine_api("GET", "/rules", params={"pack": "poundcake_cabs"})
    assert sorted(rule["ref"] for rule in rules.json()) == [f"poundcake_cabs.{n}" for n in CABS]

    product.fire_through_alertmanager(
        {"alertname": "E2ERoleDiskFull", "severity": "critical", "instance": "db-9"}
    )
    alert = product.alert_in_state("E2ERoleDiskFull", "remediated", "failed")
    assert alert["state"] == "remediated", alert
    trail = product.api("GET", f"/api/v1/requests/{alert['request_id']}").json()["trail"]
    [delivered] = trail["alerts"]
    [enforcement] = delivered["remediation"]["rule_enforcements"]
    assert enforcement["rule"] == "poundcake_cabs.disk_full"
    workflow = product.engine_api("GET", f"/executions/{enforcement['execution_id']}").json()
    assert workflow["status"] == "succeeded", workflow
    children = product.engine_api(
        "GET", "/executions", params={"parent": workflow["id"], "limit": 10}
    ).json()
    assert sorted((child["action"]["ref"], child["status"]) for child in children) == [
        ("core.echo", "succeeded"),
        ("core.local", "succeeded"),
    ]
    # The stream serves administrators only: the beat follows by polling and says so once.
    message = REFUSED_MESSAGE % (product.env["ST2_STREAM_URL"],)
    assert product.log("poundcake-beat").count(message) == 1, product.log("poundcake-beat")


def test_an_approval_is_asked_and_answered_through_inquiries_with_the_role(
    product: Product,
) -> None:
    fire(product, "E2ERoleGated", "gated-1")
    approval = asked(product, "gated", "gated-1")
    approved = product.poundcake("approvals", "approve", str(approval["id"]), "--by", "alice")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    alert = product.alert_in_state("E2ERoleGated", "remediated", "failed")
    assert alert["state"] == "remediated", alert
    inquiry = product.engine_api("GET", f"/executions/{approval['inquiry_id']}").json()
    assert inquiry["status"] == "succeeded", inquiry
    assert inquiry["context"]["user"] == KEY_USER


def test_the_key_is_refused_what_the_role_does_not_grant(product: Product) -> None:
    stored = product.engine_api("PUT", "/keys/e2e_secret", json={"value": "s3", "secret": True})
    assert stored.status_code == 200, stored.text
    refused(
        as_poundcake(product, "GET", "/keys/e2e_secret", params={"decrypt": "true"}),
        f'User "{KEY_USER}" doesn\'t have required permission "key_value_pair_view" on '
        'resource "key_value_pair:st2kv.system:e2e_secret"',
    )
    refused(
        as_poundcake(product, "GET", "/keys", params={"decrypt": "true"}),
        "Decrypt option requires administrator access",
    )
    refused(
        as_poundcake(product, "POST", "/apikeys", json={"metadata": {}}),
        f'User "{KEY_USER}" doesn\'t have required permission "api_key_create"',
    )
    refused(
        as_poundcake(
            product, "POST", "/executions", json={"action": "core.local", "parameters": {}}
        ),
        f'User "{KEY_USER}" doesn\'t have required permission "action_execute" on resource '
        '"action:core:local"',
    )
    refused(as_poundcake(product, "GET", "/rbac/roles"), "Administrator access required")
    refused(as_poundcake(product, "GET", "/rbac/roles/poundcake"), "Administrator access required")
    # What the role grants, for contrast: the CAB's own workflow.
    allowed = as_poundcake(product, "GET", "/actions/poundcake_cabs.disk_full")
    assert allowed.status_code == 200, allowed.text


def test_engine_key_again_changes_nothing(product: Product) -> None:
    before = role_state(product), key_file(product)
    rbac_dir = product.engine.directory / "data" / "rbac"
    files = {path: path.stat().st_mtime_ns for path in rbac_dir.rglob("*.yaml")}
    again = product.poundcake("engine-key")
    text = again.stdout + again.stderr
    assert again.returncode == 0, text
    assert f'RBAC: user "{KEY_USER}" already holds the role "poundcake" alone' in text
    assert "Wrote" not in text
    assert (role_state(product), key_file(product)) == before
    assert {path: path.stat().st_mtime_ns for path in rbac_dir.rglob("*.yaml")} == files
    reapplied = product.poundcake("cabs", "apply")
    assert reapplied.returncode == 0, reapplied.stdout + reapplied.stderr


def test_a_rotated_key_holds_the_role_alone_too(product: Product) -> None:
    old = key_file(product)
    rotated = product.poundcake("engine-key", "--rotate", "--grace", "0")
    text = rotated.stdout + rotated.stderr
    assert rotated.returncode == 0, text
    assert f'RBAC: user "{KEY_USER}" already holds the role "poundcake" alone' in text
    assert key_file(product) != old
    me = as_poundcake(product, "GET", "/user")
    assert me.json()["rbac"] == {"enabled": True, "roles": ["poundcake"], "is_admin": False}
    gone = httpx.get(product.engine.api_url + "/user", headers={"St2-Api-Key": old}, timeout=30)
    assert gone.status_code == 401, gone.text
