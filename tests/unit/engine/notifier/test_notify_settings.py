"""Which notify sections post for a finished execution, and which notify an execution carries."""

from __future__ import annotations

from poundcake.engine.notifier.settings import applicable_sections, execution_notify

NOTIFY = {
    "on-complete": {"routes": ["audit"]},
    "on-success": {"routes": ["slack", "email"], "message": "ok {{ x }}", "data": {"k": 1}},
    "on-failure": {"channels": ["pager"]},
}


def names(status: str, notify: dict[str, object] = NOTIFY) -> list[tuple[str, tuple[str, ...]]]:
    sections = applicable_sections(notify, status=status, action_ref="pack.act")
    return [(section.name, section.routes) for section in sections]


def test_sections_follow_the_status_in_stackstorms_order() -> None:
    assert names("succeeded") == [("on-complete", ("audit",)), ("on-success", ("slack", "email"))]
    for status in ("failed", "timeout", "abandoned"):
        assert names(status) == [("on-complete", ("audit",)), ("on-failure", ("pager",))]
    assert names("canceled") == [("on-complete", ("audit",))]


def test_default_message_and_a_section_without_routes_posts_nothing() -> None:
    sections = applicable_sections(NOTIFY, status="failed", action_ref="pack.act")
    assert [section.message for section in sections] == [
        "Action pack.act completed.",
        "Action pack.act failed.",
    ]
    assert names("succeeded", {"on-success": {"message": "no routes"}}) == []
    assert names("succeeded", {"on-success": {"routes": [], "channels": ["c"]}}) == [
        ("on-success", ("c",))
    ]


def test_the_actions_own_notify_wins_and_skip_sends_none() -> None:
    own = {"on-success": {"routes": ["a"]}}
    asked = {"on-failure": {"routes": ["b"]}}
    assert execution_notify(own, asked) == own
    assert execution_notify({}, asked) == asked
    assert execution_notify({"on-success": None}, asked) == asked
    assert execution_notify(own, asked, skip=True) == {}
    assert execution_notify(None, {"on-success": {}}) == {}
