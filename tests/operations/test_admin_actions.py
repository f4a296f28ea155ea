"""The operations from Django admin, as an admin clicks them: the bulk actions on
subscriptions, publications and watchers, each observed on a real SIP watcher; and the
operations API answering an admin's browser session."""

import json

import pytest

from tests.integration.test_admin import Browser
from tests.operations.helpers import drop_rules, subscription_of, write_rules
from tests.presence import assert_silent, next_notify, pidf, publish, state, tuples, watch
from tests.presrules import rule

ALICE, BOB, CAROL = "sip:alice@localhost", "sip:bob@localhost", "sip:carol@localhost"


@pytest.fixture(scope="module")
def browser(server, tokens):  # tokens: creates the superuser root too
    browser = Browser(server.http_url)
    path, status, page = browser.submit(
        "/admin/login/?next=/admin/", "login-form", username="root", password="admin-pw"
    )
    assert (path, status) == ("/admin/", 200), page[:500]
    return browser


def run_action(browser, changelist: str, action: str, selected: int) -> str:
    path, status, page = browser.submit(
        changelist, "changelist-form", action=action, _selected_action=str(selected)
    )
    assert (path, status) == (changelist, 200), page[:2000]
    return page


def test_terminate_selected_subscriptions(server, ua, browser):
    bob = ua("ws", server, user="bob")
    watch(bob, ALICE)
    row = subscription_of(server, bob)

    page = run_action(browser, "/admin/sipws/activewatcher/", "terminate", row["id"])

    assert "Terminate: 1 done, 1 NOTIFY(s) sent" in page
    assert next_notify(bob).header("Subscription-State") == "terminated;reason=deactivated"
    assert server.rows("SELECT id FROM sipws_activewatcher WHERE id = ?", (row["id"],)) == []


def test_refresh_the_watchers_of_selected_publications(server, ua, browser):
    alice, bob = ua("udp", server, user="alice"), ua("udp", server, user="bob")
    publish(alice, pidf(ALICE, note="out"))
    _, first = watch(bob, ALICE)
    (publication,) = server.rows("SELECT id FROM sipws_presentity WHERE uri = ?", (ALICE,))

    page = run_action(browser, "/admin/sipws/presentity/", "refresh_watchers", publication[0])

    assert "Refresh: 1 done, 1 NOTIFY(s) sent" in page
    again = next_notify(bob)
    assert tuples(again.body) == tuples(first.body) == [("t1", "open", "out")]


def test_reevaluate_selected_watchers(server, ua, browser):
    bob = ua("udp", server, user="bob")
    watch(bob, CAROL)
    (watcher,) = server.rows(
        "SELECT id FROM sipws_watcher WHERE presentity_uri = ? AND watcher_uri = ?", (CAROL, BOB)
    )
    try:
        write_rules(server, CAROL, rule("wait", "confirm", one=(BOB,)))
        assert_silent(bob)

        page = run_action(browser, "/admin/sipws/watcher/", "reevaluate", watcher[0])

        assert "Reevaluate: 1 done, 1 NOTIFY(s) sent" in page
        assert state(next_notify(bob))[0] == "pending"
        assert subscription_of(server, bob)["status"] == "pending"
    finally:
        drop_rules(server, CAROL)


def test_the_api_answers_an_admin_session(server, ua, browser):
    bob = ua("udp", server, user="bob")
    watch(bob, ALICE)
    row = subscription_of(server, bob)

    path, status, page = browser.get(f"/api/admin/subscriptions/?watcher={BOB}&format=json")

    assert status == 200
    assert [r["id"] for r in json.loads(page)["results"]] == [row["id"]]
    # A session write needs the CSRF token, as every form of the admin does.
    _, status, page = browser._open(f"/api/admin/subscriptions/{row['id']}/terminate/", b"")
    assert status == 403 and "CSRF" in page
    assert subscription_of(server, bob)["status"] == "active"
    assert_silent(bob)
