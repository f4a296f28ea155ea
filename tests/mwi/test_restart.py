"""MWI state survives a restart: it is a publication in the database (issue 5, item 2)."""

import signal

from tests.mwi.api import Api
from tests.mwi.conftest import provision_mwi
from tests.presence import next_notify, watch
from tests.sipclient import SipClient

URL = "/api/mwi/alice@localhost/"
STATE = {"messages_waiting": True, "voice": {"new": 1, "old": 2, "urgent_new": 1}}
BODY = "Messages-Waiting: yes\r\nVoice-Message: 1/2 (1/0)\r\n"


def test_state_survives_a_restart_and_the_first_notify_carries_it(tmp_path):
    server, tokens = provision_mwi(tmp_path)
    server.start()
    phone = None
    try:
        api = Api(server.http_url, tokens["voicemail"])
        assert api.put(URL, STATE).status == 200

        assert server.stop(signal.SIGTERM) == 0
        server.start()

        api = Api(server.http_url, tokens["voicemail"])
        answer = api.get(URL)
        assert answer.status == 200
        assert answer.json["voice"] == {"new": 1, "old": 2, "urgent_new": 1, "urgent_old": 0}
        phone = SipClient("udp", server, user="alice")
        _, first = watch(phone, "sip:alice@localhost", event="message-summary")
        assert first.body == BODY
        assert api.delete(URL).status == 204
        assert next_notify(phone).body == "Messages-Waiting: no\r\n"
    finally:
        if phone is not None:
            phone.close()
        server.stop()
