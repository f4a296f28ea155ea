"""`document_changed` goes out after every committed write: XCAP PUT and DELETE of documents
and parts, and edits in Django admin; never for a refused or rolled-back write."""

import pytest
from django.db import transaction
from django.test import Client

from sipws.services.accounts import create_account
from xcapapi import store
from xcapapi.models import XcapDocument
from xcapapi.signals import document_changed

pytestmark = pytest.mark.django_db
ROOT = "/xcap-root/"
RL = "resource-lists/users/sip:alice@localhost/index"
DOCUMENT = (
    '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
    '<list name="friends"/></resource-lists>'
)


@pytest.fixture
def changes():
    seen = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    document_changed.connect(receiver)
    yield seen
    document_changed.disconnect(receiver)


@pytest.fixture
def alice():
    account = create_account("alice@localhost", "secret")
    client = Client()
    client.force_login(account.user)
    return client


def _event(deleted=False, auid="resource-lists", xui="sip:alice@localhost", name="index"):
    return {"auid": auid, "xui": xui, "name": name, "deleted": deleted, "signal": document_changed}


def test_store_sends_after_commit_only(changes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        document, created = store.save_document(
            auid="resource-lists", xui="sip:alice@localhost", name="index", body=DOCUMENT.encode()
        )
        assert changes == []  # not before the commit
    assert created and document.username == "alice" and document.domain == "localhost"
    assert document.doc_type == 4 and document.content_type == "application/resource-lists+xml"
    assert changes == [_event()]
    with django_capture_on_commit_callbacks(execute=True):
        store.delete_document(document)
    assert changes[-1] == _event(deleted=True)


def test_a_rolled_back_write_sends_nothing(changes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            store.save_document(
                auid="resource-lists", xui="sip:alice@localhost", name="index", body=b"<x/>"
            )
            raise RuntimeError("rollback")
    assert changes == [] and not XcapDocument.objects.exists()


def test_a_failing_receiver_does_not_fail_the_write(django_capture_on_commit_callbacks):
    def broken(sender, **kwargs):
        raise ValueError("receiver bug")

    document_changed.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            store.save_document(
                auid="resource-lists", xui="sip:alice@localhost", name="index", body=b"<x/>"
            )
    finally:
        document_changed.disconnect(broken)
    assert XcapDocument.objects.count() == 1


def test_xcap_writes_send_it(alice, changes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reply = alice.put(ROOT + RL, DOCUMENT, content_type="application/resource-lists+xml")
    assert reply.status_code == 201 and changes == [_event()]
    element = ROOT + RL + '/~~/resource-lists/list[@name="friends"]/entry'
    with django_capture_on_commit_callbacks(execute=True):
        reply = alice.put(
            element, '<entry uri="sip:bob@localhost"/>', content_type="application/xcap-el+xml"
        )
    assert reply.status_code == 201 and changes[-1] == _event()
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.delete(element).status_code == 200
    assert changes[-1] == _event() and len(changes) == 3
    with django_capture_on_commit_callbacks(execute=True):
        refused = alice.put(element, "<entry/>", content_type="application/xcap-el+xml")
    assert refused.status_code == 409 and len(changes) == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.delete(ROOT + RL).status_code == 200
    assert changes[-1] == _event(deleted=True)


def test_admin_edits_send_it(admin_client, changes, django_capture_on_commit_callbacks):
    add = "/admin/xcapapi/xcapdocument/add/"
    form = {
        "auid": "pres-rules",
        "xui": "sip:Alice@LOCALHOST",
        "name": "index",
        "text": '<ruleset xmlns="urn:ietf:params:xml:ns:common-policy"/>',
    }
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post(add, form)
    assert reply.status_code == 302, reply.content
    document = XcapDocument.objects.get()
    assert (document.xui, document.username, document.domain) == (
        "sip:Alice@localhost",
        "Alice",
        "localhost",
    )
    assert changes == [_event(auid="pres-rules", xui="sip:Alice@localhost")]
    change = f"/admin/xcapapi/xcapdocument/{document.pk}/change/"
    invalid = {
        **form,
        "text": '<ruleset xmlns="urn:ietf:params:xml:ns:common-policy"><oops/></ruleset>',
    }
    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post(change, invalid)
    assert reply.status_code == 200 and b"schema validation failed" in reply.content
    assert len(changes) == 1
    etag = document.etag
    renamed = {**form, "name": "other"}
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(change, renamed).status_code == 302
    assert changes[1:] == [
        _event(auid="pres-rules", xui="sip:Alice@localhost", deleted=True),
        _event(auid="pres-rules", xui="sip:Alice@localhost", name="other"),
    ]
    document = XcapDocument.objects.get()
    assert document.name == "other" and document.etag != etag
    delete = f"/admin/xcapapi/xcapdocument/{document.pk}/delete/"
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert changes[-1] == _event(
        auid="pres-rules", xui="sip:Alice@localhost", name="other", deleted=True
    )
    assert admin_client.get("/admin/xcapapi/xcapdocument/?auid=pres-rules").status_code == 200
