"""RFC 4475 torture messages through `parse_message`, one test per message.

The messages are rebuilt here from the RFC's descriptions; bodies are the RFC's SDP.
Valid messages must parse to the values the RFC calls out. Invalid ones must raise
ParseError with the status the server answers (a response that fails is dropped by the
caller, whatever its status). Where the RFC wants the message accepted and answered by
a higher layer (416, 420, 415, ...), the test shows what that layer reads from the parser.
"""

from urllib.parse import unquote

import pytest

from sipws.core.errors import ParseError
from sipws.core.message import Request, Response, StreamFramer, make_response, parse_message


def crlf(text: str) -> bytes:
    """Wire form of a message written with '\\n' line ends: CRLF, UTF-8."""
    return text.replace("\n", "\r\n").encode("utf-8")


def sdp(origin: str, conn: str, timing: str = "0 0") -> str:
    return (
        f"v=0\no=mhandley 29739 7272939 IN IP4 {origin}\ns=-\nc=IN IP4 {conn}\nt={timing}\n"
        "m=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"
    )


def request(data: bytes, **kwargs) -> Request:
    message = parse_message(data, **kwargs)
    assert isinstance(message, Request)
    return message


def response(data: bytes) -> Response:
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def rejected(data: bytes, status: int = 400, **kwargs) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_message(data, **kwargs)
    assert info.value.status == status, info.value.reason
    return info.value


def reparsed(message: Request | Response) -> Request | Response:
    """What a peer reads from what we would send: serialising must not break anything."""
    return parse_message(bytes(message))


# 3.1.1 Valid messages -------------------------------------------------------------------

WSINV = crlf(
    r"""INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

"""
    + sdp("192.0.2.3", "192.0.2.4")
)


def test_3_1_1_1_wsinv_short_tortuous_invite():
    msg = request(WSINV)
    assert msg.method == "INVITE"
    assert msg.sip_uri.has_param("unknownparam")
    assert msg.sip_uri.param("unknownparam") is None
    # LWS around ':' '/' ';' '=' and line folding everywhere.
    assert msg.to.tag == "1918181833n" and msg.to.display_name is None
    assert msg.from_.tag == "98asjd8"
    assert msg.from_.display_name == 'J Rosenberg \\"'
    assert msg.max_forwards == 68  # leading zeros
    assert (msg.cseq.number, msg.cseq.method) == (9, "INVITE")
    assert msg.call_id == "wsinv.ndaksdj@192.0.2.1"
    # Short and long forms of Via, separate and comma-separated values.
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    # Unknown header: not split or parsed as params, kept as it came.
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert msg.headers.get_all("UnknownHeaderWithUnusualValue") == [";;,,;;,;"]
    route = msg.headers.get_all("Route")
    assert route == ["<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"]
    (contact,) = msg.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert msg.content_type == "application/sdp"
    assert len(msg.body) == 150
    again = reparsed(msg)
    assert again.to.tag == "1918181833n" and len(again.vias) == 3


UNUSUAL_USER = "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
UNUSUAL_PASSWORD = "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
INTMETH_METHOD = "!interesting-Method0123456789_*+`.%indeed'~"
INTMETH_CALL_ID = "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
INTMETH = crlf(
    "\n".join(
        [
            f"{INTMETH_METHOD} sip:{UNUSUAL_USER}:{UNUSUAL_PASSWORD}@example.com SIP/2.0",
            "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
            f'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:{UNUSUAL_USER}@example.com>',
            "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>"
            ";fromParam''~+*_!.-%=\"работающий\";tag=_token~1'+`*%!-.",
            f"Call-ID: {INTMETH_CALL_ID}",
            f"CSeq: 139122385 {INTMETH_METHOD}",
            "Max-Forwards: 255",
            "extensionHeader-!.%*+_`'~: \ufeff大停電",
            "Content-Length: 0",
            "",
            "",
        ]
    )
)


def test_3_1_1_2_intmeth_wide_range_of_valid_characters():
    msg = request(INTMETH)
    assert msg.method == INTMETH_METHOD
    assert msg.cseq.method == INTMETH_METHOD and msg.cseq.number == 139122385
    uri = msg.sip_uri
    assert (uri.user, uri.password, uri.host) == (UNUSUAL_USER, UNUSUAL_PASSWORD, "example.com")
    assert uri.params == () and uri.headers is None  # '?' and ';' here are in the user part
    assert msg.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    # quoted-pairs expand, including the escaped NUL.
    assert msg.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.to.sip_uri.user == UNUSUAL_USER
    assert msg.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.param("fromParam''~+*_!.-%") == '"работающий"'
    assert msg.from_.tag == "_token~1'+`*%!-."
    # In a Call-ID '%' is no escape and quotes and brackets need no partner.
    assert msg.call_id == INTMETH_CALL_ID
    assert msg.max_forwards == 255
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    again = reparsed(msg)
    assert again.to.display_name == msg.to.display_name
    assert again.sip_uri == msg.sip_uri


ESC01 = crlf(
    """INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: 150

"""
    + sdp("192.0.2.1", "192.0.2.1")
)


def test_3_1_1_3_esc01_valid_use_of_escaping():
    msg = request(ESC01)
    # The escaped user is a user of example.net, not a sips: URI.
    assert msg.sip_uri.host == "example.net"
    assert unquote(msg.sip_uri.user) == "sips:user@example.com"
    assert msg.to.sip_uri.aor == "sip:user@example.com"
    assert unquote(msg.from_.sip_uri.user) == "I have spaces"
    assert msg.call_id == "esc01.239409asdfakjkn23onasd0-3234"
    assert msg.content_type == "application/sdp"
    contact = msg.contacts[0].sip_uri
    assert unquote(contact.user) == "caller"
    assert contact.has_param("lr")  # %6C%72
    # Unescaping is done once: the value is "value%41", not "valueA".
    assert unquote(contact.param("name")) == "value%41"
    assert bytes(msg).startswith(b"INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\r\n")


ESCNULL = crlf(
    """REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0

"""
)


def test_3_1_1_4_escnull_escaped_nulls_in_uris():
    msg = request(ESCNULL)
    # The AOR keeps all of its user part: nothing stops at the NUL.
    assert msg.to.sip_uri.user == "null-%00-null"
    assert msg.to.sip_uri.aor == "sip:null-\x00-null@example.com"
    first, second = (c.sip_uri for c in msg.contacts)
    assert (first.user, second.user) == ("%00", "%00%00")
    assert not first.matches(second)  # two distinct contacts
    # Written back escaped, never as a raw NUL.
    wire = bytes(msg)
    assert b"\x00" not in wire and b"sip:%00%00@host5.example.com" in wire


ESC02 = crlf(
    """RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0

"""
)


def test_3_1_1_5_esc02_percent_that_is_not_an_escape():
    msg = request(ESC02)
    # An unknown method (an endpoint answers 501), not REGISTER.
    assert msg.method == "RE%47IST%45R" and msg.method != "REGISTER"
    assert msg.to.display_name == "%Z%45" and msg.from_.display_name == "%Z%45"
    assert msg.top_via.branch == "z9hG4bK209%fzsnel234"
    # Two Contact values; C%6Fntact is an extension header.
    assert [c.sip_uri.user for c in msg.contacts] == ["alias1", "alias3"]
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


LWSDISP = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0

"""
)


def test_3_1_1_6_lwsdisp_no_lws_between_display_name_and_bracket():
    msg = request(LWSDISP)
    assert msg.from_.display_name == "caller"
    assert msg.from_.sip_uri.user == "caller" and msg.from_.tag == "323"


LONG_TAG = "1298" + "2982" * 36 + "2424"
LONG_BRANCH = "very" + "long" * 48 + "branchvalue"
LONGREQ_VIAS = [
    "Via: SIP/2.0/TCP sip33.example.com",
    "v: SIP/2.0/TCP sip32.example.com",
    "V: SIP/2.0/TCP sip31.example.com",
    "Via: SIP/2.0/TCP sip30.example.com",
    "ViA: SIP/2.0/TCP sip29.example.com",
    "VIa: SIP/2.0/TCP sip28.example.com",
    "VIA: SIP/2.0/TCP sip27.example.com",
    "via: SIP/2.0/TCP sip26.example.com",
    "viA: SIP/2.0/TCP sip25.example.com",
    "vIa: SIP/2.0/TCP sip24.example.com",
    "vIA: SIP/2.0/TCP sip23.example.com",
    "V :  SIP/2.0/TCP sip22.example.com",
    "v :  SIP/2.0/TCP sip21.example.com",
    "V  : SIP/2.0/TCP sip20.example.com",
    "v  : SIP/2.0/TCP sip19.example.com",
    "Via : SIP/2.0/TCP sip18.example.com",
    "Via  : SIP/2.0/TCP sip17.example.com",
    *(f"Via: SIP/2.0/TCP sip{n}.example.com" for n in range(16, 0, -1)),
    f"Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch={LONG_BRANCH}",
]
LONGREQ_DISPLAY = "I have a user name of " + "extreme" * 10 + " proportion"
LONG_CALLER = "amazinglylongcallername" * 5
LONG_HEADER = "Unknown-" + "Long" * 20 + "-Name"
LONG_CALL_ID = "longreq.one" + "really" * 20 + "longcallid"
LONGREQ = crlf(
    "\n".join(
        [
            "INVITE sip:user@example.com SIP/2.0",
            f'To: "{LONGREQ_DISPLAY}"<sip:user@example.com:6000'
            f";unknownparam1=very{'long' * 20}value"
            f";longparam{'name' * 25}=shortvalue"
            f";very{'long' * 25}ParameterNameWithNoValue>",
            f"F: sip:{LONG_CALLER}@example.net;tag={LONG_TAG}"
            f";unknownheaderparam{'name' * 20}=unknowheaderparam{'value' * 15}"
            f";unknownValueless{'paramname' * 10}",
            f"Call-ID: {LONG_CALL_ID}",
            "CSeq: 3882340 INVITE",
            f"{LONG_HEADER}: unknown-{'long' * 20}-value;"
            f" unknown-{'long' * 20}-parameter-name = unknown-{'long' * 20}-parameter-value",
            *LONGREQ_VIAS,
            "Max-Forwards: 70",
            f"Contact: <sip:{LONG_CALLER}@host5.example.net>",
            "Content-Type: application/sdp",
            "l: 150",
            "",
            sdp("192.0.2.1", "192.0.2.1"),
        ]
    )
)


def test_3_1_1_7_longreq_long_values_in_header_fields():
    msg = request(LONGREQ)
    assert len(msg.headers) == 43
    assert msg.to.display_name == LONGREQ_DISPLAY
    to_uri = msg.to.sip_uri
    assert to_uri.port == 6000 and len(to_uri.params) == 3
    assert to_uri.param("unknownparam1") == f"very{'long' * 20}value"
    assert to_uri.has_param(f"very{'long' * 25}ParameterNameWithNoValue")
    assert msg.from_.sip_uri.user == LONG_CALLER
    assert msg.from_.tag == LONG_TAG and len(msg.from_.params) == 3
    assert msg.call_id == LONG_CALL_ID
    assert msg.headers.get(LONG_HEADER).startswith("unknown-longlong")
    # 34 Via values, every spelling of the name, in order.
    assert len(msg.vias) == 34
    assert [v.host for v in msg.vias[:33]] == [f"sip{n}.example.com" for n in range(33, 0, -1)]
    assert {v.transport for v in msg.vias} == {"TCP"}
    assert msg.vias[-1].param("received") == "192.0.2.5"
    assert msg.vias[-1].branch == LONG_BRANCH
    assert msg.contacts[0].sip_uri.user == LONG_CALLER
    assert len(msg.body) == 150
    assert len(reparsed(msg).vias) == 34


DBLREQ = crlf(
    """REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0

INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: 150

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.15
s=-
c=IN IP4 192.0.2.15
t=0 0
m=audio 49217 RTP/AVP 0 12
m =video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"""
)


def test_3_1_1_8_dblreq_extra_trailing_octets_in_a_udp_datagram():
    """Octets after Content-Length in a datagram are noise (RFC 3261 §18.3)."""
    msg = request(DBLREQ)
    assert msg.method == "REGISTER" and msg.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert msg.body == b""
    assert b"INVITE" not in bytes(msg)


SEMIURI = crlf(
    """OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0

"""
)


def test_3_1_1_9_semiuri_semicolon_in_uri_user_part():
    msg = request(SEMIURI)
    uri = msg.sip_uri
    assert unquote(uri.user) == "user;par=u@example.net"
    assert uri.host == "example.com" and uri.params == ()
    assert msg.headers.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


TRANSPORTS = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0

"""
)


def test_3_1_1_10_transports_varied_and_unknown_transport_types():
    msg = request(TRANSPORTS)
    assert [v.transport for v in msg.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert [v.host for v in msg.vias] == [f"t{n}.example.com" for n in range(1, 6)]
    assert msg.call_id == "transports.kijh4akdnaqjkwendsasfdj"


# A binary part with NULs, every byte value and a blank line inside: only Content-Length
# says where the message ends.
MPART_BINARY = (
    bytes(range(256)) + b"\r\n\r\n\x00\x00--7a9cbec02ceef655-\r\n" + bytes(range(255, -1, -1))
)
MPART_BODY = (
    b"--7a9cbec02ceef655\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: binary\r\n"
    b"\r\n"
    b"Hello\r\n"
    b"--7a9cbec02ceef655\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n"
    b"\r\n" + MPART_BINARY + b"\r\n--7a9cbec02ceef655--\r\n"
)
IDENTITY = (
    "r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjc"
    "BUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA="
)
MPART01 = (
    crlf(
        f"""MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: {IDENTITY}
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..
CSeq: 1 MESSAGE
Content-Transfer-Encoding: binary
Content-Type: multipart/mixed;boundary=7a9cbec02ceef655
Date: Sat, 15 Oct 2005 04:44:56 GMT
User-Agent: SIPimp.org/0.2.5 (curses)
"""
    )
    + f"Content-Length: {len(MPART_BODY)}\r\n\r\n".encode()
    + MPART_BODY
)


def test_3_1_1_11_mpart01_multipart_message_with_binary_part():
    msg = request(MPART01)
    assert msg.body == MPART_BODY
    assert msg.content_type == "multipart/mixed"
    assert msg.headers.get("Content-Type").endswith(";boundary=7a9cbec02ceef655")
    assert msg.top_via.port == 5070 and msg.top_via.has_param("rport")
    assert bytes(msg).endswith(MPART_BODY)
    # Over a stream the framer cuts it by Content-Length too, body and all.
    framer = StreamFramer()
    assert framer.feed(MPART01 + MPART01[:100]) == [MPART01]
    assert framer.feed(MPART01[100:]) == [MPART01]


UNREASON_PHRASE = "= 2**3 * 5**2 но сто девяносто девять - простое"
UNREASON = crlf(
    f"""SIP/2.0 200 {UNREASON_PHRASE}
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>

"""
    + sdp("192.0.2.198", "192.0.2.198")
)


def test_3_1_1_12_unreason_unusual_reason_phrase():
    msg = response(UNREASON)
    assert msg.status == 200
    assert msg.reason == UNREASON_PHRASE
    assert (msg.from_.tag, msg.to.tag) == ("11141343", "2229")
    assert len(msg.body) == 154
    assert bytes(msg).startswith(f"SIP/2.0 200 {UNREASON_PHRASE}\r\n".encode())


NOREASON_HEADERS = """Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

"""
NOREASON = crlf("SIP/2.0 100 \n" + NOREASON_HEADERS)


def test_3_1_1_13_noreason_empty_reason_phrase():
    msg = response(NOREASON)
    assert (msg.status, msg.reason) == (100, "")
    assert bytes(msg).startswith(b"SIP/2.0 100 \r\n")  # the SP stays
    # Liberal: the same without the SP is read the same way.
    assert response(crlf("SIP/2.0 100\n" + NOREASON_HEADERS)).reason == ""


# 3.1.2 Invalid messages -----------------------------------------------------------------

BADINV01 = crlf(
    """INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: "Joe" <sip:joe@example.org>;;;;
Content-Length: 152
Content-Type: application/sdp

"""
    + sdp("192.0.2.15", "192.0.2.15")
)


def test_3_1_2_1_badinv01_extraneous_header_field_separators():
    error = rejected(BADINV01)
    assert "parameter" in error.reason
    # The Contact alone is enough to be rejected, too.
    contact_only = BADINV01.replace(b";;,;,,", b";branch=z9hG4bKkdjuw")
    assert "parameter" in rejected(contact_only).reason


CLERR = crlf(
    """INVITE sip:user@example.com SIP/2.0
Max-Forwards: 80
To: sip:j.user@example.com
From: sip:caller@example.net;tag=93942939o2
Contact: <sip:caller@hungry.example.net>
Call-ID: clerr.0ha0isndaksdjweiafasdk3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523
Content-Type: application/sdp
Content-Length: 9999

"""
    + sdp("192.0.2.155", "192.0.2.155")
)


def test_3_1_2_2_clerr_content_length_larger_than_message():
    """Over UDP: 400. Over TCP the framer waits for the rest (the transport's idle timeout
    closes the connection if it never comes)."""
    error = rejected(CLERR)
    assert "Content-Length" in error.reason
    assert isinstance(error.message, Request)  # enough to answer it
    assert StreamFramer().feed(CLERR) == []


NCL = crlf(
    """INVITE sip:user@example.com SIP/2.0
Max-Forwards: 254
To: sip:j.user@example.com
From: sip:caller@example.net;tag=32394234
Call-ID: ncl.0ha0isndaksdj2193423r542w35
CSeq: 0 INVITE
Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw
Contact: <sip:caller@example53.example.net>
Content-Type: application/sdp
Content-Length: -999

"""
    + sdp("192.0.2.53", "192.0.2.53")
)


def test_3_1_2_3_ncl_negative_content_length():
    """400 over UDP; over TCP the framing error is fatal and the connection is closed."""
    assert "Content-Length" in rejected(NCL).reason
    assert "Content-Length" in rejected(NCL.replace(b"-999", b"five")).reason
    with pytest.raises(ParseError):
        StreamFramer().feed(NCL)


SCALAR02 = crlf(
    """REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=239232jh3
CSeq: 36893488147419103232 REGISTER
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
Max-Forwards: 300
Expires: """
    + "1"
    + "0" * 100
    + """
Contact: <sip:user@host129.example.com>
  ;expires=280297596632815
Content-Length: 0

"""
)


def test_3_1_2_4_scalar02_request_scalar_fields_with_overlarge_values():
    assert "CSeq" in rejected(SCALAR02).reason
    # Max-Forwards alone out of range is an error too; expiry values are clamped.
    fixed_cseq = SCALAR02.replace(b"36893488147419103232", b"36")
    assert "Max-Forwards" in rejected(fixed_cseq).reason
    msg = request(fixed_cseq.replace(b"Max-Forwards: 300", b"Max-Forwards: 70"))
    assert msg.expires == 2**32 - 1
    assert msg.contacts[0].param("expires") == "280297596632815"


SCALARLG = crlf(
    """SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
Retry-After: 949302838503028349304023988
Warning: 1812 overture "In Progress"
Content-Length: 0

"""
)


def test_3_1_2_5_scalarlg_response_scalar_fields_with_overlarge_values():
    """A response: the caller drops it, whatever the status on the error."""
    assert "CSeq" in rejected(SCALARLG).reason


QUOTBAL = crlf(
    """INVITE sip:user@example.com SIP/2.0
To: "Mr. J. User <sip:j.user@example.com>
From: sip:caller@example.net;tag=93334
Max-Forwards: 10
Call-ID: quotbal.aksdj
Contact: <sip:caller@host59.example.net>
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234
Content-Type: application/sdp
Content-Length: 152

"""
    + sdp("192.0.2.15", "192.0.2.15")
)


def test_3_1_2_6_quotbal_unterminated_quoted_string_in_display_name():
    assert "quoted" in rejected(QUOTBAL).reason


LTGTRURI = crlf(
    """INVITE <sip:user@example.com> SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=39291
Max-Forwards: 23
Call-ID: ltgtruri.1@192.0.2.5
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.5
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 159

"""
    + sdp("192.0.2.5", "192.0.2.5", "3149328700 0")
)


def test_3_1_2_7_ltgtruri_brackets_around_request_uri():
    assert "URI" in rejected(LTGTRURI).reason


LWSRURI = crlf(
    """INVITE sip:user@example.com; lr SIP/2.0
To: sip:user@example.com;tag=3xfe-9921883-z9f
From: sip:caller@example.net;tag=231413434
Max-Forwards: 5
Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423
CSeq: 2130706432 INVITE
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395
Contact: <sip:caller@host1.example.net>
Content-Type: application/sdp
Content-Length: 159

"""
    + sdp("192.0.2.1", "192.0.2.1", "3149328700 0")
)


def test_3_1_2_8_lwsruri_lws_inside_request_uri():
    assert "request line" in rejected(LWSRURI).reason


LWSSTART = crlf(
    """INVITE  sip:user@example.com  SIP/2.0
Max-Forwards: 8
To: sip:user@example.com
From: sip:caller@example.net;tag=8814
Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com
CSeq: 1893884 INVITE
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923
Contact: <sip:caller@host1.example.net>
Content-Type: application/sdp
Content-Length: 150

"""
    + sdp("192.0.2.1", "192.0.2.1")
)


def test_3_1_2_9_lwsstart_multiple_sp_in_request_line():
    """Rejecting is what the RFC allows; we are not liberal about the start line."""
    assert "request line" in rejected(LWSSTART).reason


TRWS = crlf(
    "OPTIONS sip:remote-target@example.com SIP/2.0  \n"
    """Via: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093
To: <sip:remote-target@example.com>
From: <sip:local-resource@example.com>;tag=329429089
Call-ID: trws.oicu34958239neffasdhr2345r
Accept: application/sdp
CSeq: 238923 OPTIONS
Max-Forwards: 70
Content-Length: 0

"""
)


def test_3_1_2_10_trws_sp_at_end_of_request_line():
    """Rejecting is what the RFC allows; we are not liberal about the start line."""
    assert "request line" in rejected(TRWS).reason


ESCRURI = crlf(
    """INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=341518
Max-Forwards: 7
Contact: <sip:caller@host39923.example.net>
Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5
CSeq: 149209342 INVITE
Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw
Content-Type: application/sdp
Content-Length: 150

"""
    + sdp("192.0.2.1", "192.0.2.1")
)


def test_3_1_2_11_escruri_escaped_headers_in_request_uri():
    """Rejecting (400) is what the RFC allows; we never act on headers in a Request-URI."""
    assert "Request-URI" in rejected(ESCRURI).reason


BADDATE = crlf(
    """INVITE sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=2234923
Max-Forwards: 70
Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234
CSeq: 1392934 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
Date: Fri, 01 Jan 2010 16:00:00 EST
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 150

"""
    + sdp("192.0.2.5", "192.0.2.5")
)


def test_3_1_2_12_baddate_invalid_time_zone_in_date():
    """Accepted (the liberal choice the RFC allows): no part of the server reads Date, so
    the value is kept as text and passed through untouched."""
    msg = request(BADDATE)
    assert msg.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


REGBADCT = crlf(
    """REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=998332
Max-Forwards: 70
Call-ID: regbadct.k345asrl3fdbv@10.0.0.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw
Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E
l: 0

"""
)


def test_3_1_2_13_regbadct_name_addr_uri_not_in_brackets():
    """400: we do not infer the brackets (in general that is ambiguous)."""
    assert "addr-spec" in rejected(REGBADCT).reason


BADASPEC = crlf(
    """OPTIONS sip:user@example.org SIP/2.0
Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234
Max-Forwards: 70
From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423
To: "Watson, Thomas" < sip:t.watson@example.org >
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0

"""
)


def test_3_1_2_14_badaspec_spaces_within_addr_spec():
    """400, what the RFC calls reasonable; the quoted commas in From are fine."""
    assert "whitespace" in rejected(BADASPEC).reason
    fixed = BADASPEC.replace(b"< sip:t.watson@example.org >", b"<sip:t.watson@example.org>")
    assert request(fixed).from_.display_name == "Bell, Alexander"


BADDN = crlf(
    """OPTIONS sip:t.watson@example.org SIP/2.0
Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards:      70
From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43
To:      Watson, Thomas <sip:t.watson@example.org>
Call-ID: baddn.31415@c.example.com
Accept: application/sdp
CSeq:    3923239 OPTIONS
l: 0

"""
)


def test_3_1_2_15_baddn_non_token_characters_in_display_name():
    """400: we do not infer the missing quotes."""
    assert "display name" in rejected(BADDN).reason


BADVERS = crlf(
    """OPTIONS sip:t.watson@example.org SIP/7.0
Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw
Max-Forwards:     70
From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe
To:      T. Watson <sip:t.watson@example.org>
Call-ID: badvers.31417@c.example.com
CSeq:    1 OPTIONS
l: 0

"""
)


def test_3_1_2_16_badvers_unknown_protocol_version():
    """505, and the headers come with the error so that the 505 can be built."""
    error = rejected(BADVERS, 505)
    answer = make_response(error.message, error.status)
    assert answer.headers.get_all("Via") == ["SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw"]
    assert answer.headers.get("Call-ID") == "badvers.31417@c.example.com"
    assert bytes(answer).startswith(b"SIP/2.0 505 Version Not Supported\r\n")


MISMATCH01 = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch01.dj0234sxdfl3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
l: 0

"""
)


def test_3_1_2_17_mismatch01_start_line_and_cseq_method_mismatch():
    assert "CSeq method" in rejected(MISMATCH01).reason


MISMATCH02 = crlf(
    """NEWMETHOD sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch02.dj0234sxdfl3
CSeq: 8 INVITE
Contact: <sip:caller@host.example.net>
Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw
Content-Type: application/sdp
l: 138

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.1
c=IN IP4 192.0.2.1
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"""
)


def test_3_1_2_18_mismatch02_unknown_method_with_cseq_method_mismatch():
    """The parser says 400 (which the RFC accepts); the method travels with the error, so
    a dispatcher preferring 501 for methods it does not know can answer that instead."""
    error = rejected(MISMATCH02)
    assert error.message.method == "NEWMETHOD"


BIGCODE = crlf(
    """SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

"""
)


def test_3_1_2_19_bigcode_overlarge_response_code():
    """Not read as a 429: the response is rejected, and the caller drops it."""
    assert "status line" in rejected(BIGCODE).reason
    assert "status line" in rejected(BIGCODE.replace(b"4294967301", b"700")).reason


# 3.2 Transaction layer ------------------------------------------------------------------

BADBRANCH = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK
Accept: application/sdp
Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n
CSeq: 8 OPTIONS
l: 0

"""
)


def test_3_2_1_badbranch_missing_transaction_identifier():
    """The parser must not break; the transaction layer sees the bare magic cookie and
    decides (400, or RFC 2543 matching)."""
    msg = request(BADBRANCH)
    assert msg.top_via.branch == "z9hG4bK"


# 3.3 Application layer ------------------------------------------------------------------

INSUF = crlf(
    """INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: 152

"""
    + sdp("192.0.2.95", "192.0.2.95")
)


def test_3_3_1_insuf_missing_required_header_fields():
    """400, and the 400 can still be built from what is there without breaking."""
    error = rejected(INSUF)
    assert error.reason.startswith("missing")
    answer = make_response(error.message, 400)
    assert answer.headers.get_all("Via") == ["SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf"]
    assert answer.headers.get("CSeq") == "193942 INVITE"


UNKSCM = crlf(
    """OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234
Content-Length: 0

"""
)


def test_3_3_2_unkscm_request_uri_with_unknown_scheme():
    """Well formed: the parser accepts it; the application answers 416, which is the
    status `sip_uri` raises with."""
    msg = request(UNKSCM)
    assert msg.uri == "nobodyKnowsThisScheme:totallyopaquecontent"
    assert msg.uri_scheme == "nobodyknowsthisscheme"
    with pytest.raises(ParseError) as info:
        msg.sip_uri  # noqa: B018
    assert info.value.status == 416


NOVELSC = crlf(
    """OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: novelsc.asdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234
Content-Length: 0

"""
)


def test_3_3_3_novelsc_request_uri_with_known_but_atypical_scheme():
    """Parsed; a server that never serves soap.beep answers 416, as for unkscm."""
    msg = request(NOVELSC)
    assert msg.uri_scheme == "soap.beep"
    with pytest.raises(ParseError) as info:
        msg.sip_uri  # noqa: B018
    assert info.value.status == 416


UNKSM2 = crlf(
    """REGISTER sip:example.com SIP/2.0
To: isbn:2983792873
From: <http://www.example.com>;tag=3234233
Call-ID: unksm2.daksdj@hyphenated-host.example.com
CSeq: 234902 REGISTER
Max-Forwards: 70
Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw
Contact: <name:John_Smith>
l: 0

"""
)


def test_3_3_4_unksm2_unknown_uri_schemes_in_header_fields():
    """Parsed, the URIs kept as text; the registrar answers 400 because the To URI is
    not a SIP AOR, the status `sip_uri` raises with."""
    msg = request(UNKSM2)
    assert msg.to.uri == "isbn:2983792873"
    assert (msg.from_.uri, msg.from_.tag) == ("http://www.example.com", "3234233")
    assert msg.contacts[0].uri == "name:John_Smith"
    with pytest.raises(ParseError) as info:
        msg.to.sip_uri  # noqa: B018
    assert info.value.status == 400


BEXT01 = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.net;tag=242etr
Max-Forwards: 6
Call-ID: bext01.0ha0isndaksdj
Require: nothingSupportsThis, nothingSupportsThisEither
Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis
CSeq: 8 OPTIONS
Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw
Content-Length: 0

"""
)


def test_3_3_5_bext01_proxy_require_and_require():
    """Parsed; the application answers 420 Bad Extension with an Unsupported header
    listing the option tags it reads here."""
    msg = request(BEXT01)
    assert msg.headers.get_all("Require") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert msg.headers.get_all("Proxy-Require") == [
        "noProxiesSupportThis",
        "norDoAnyProxiesSupportThis",
    ]
    assert msg.top_via.transport == "TLS"


INVUT = crlf(
    """INVITE sip:user@example.com SIP/2.0
Contact: <sip:caller@host5.example.net>
To: sip:j.user@example.com
From: sip:caller@example.net;tag=8392034
Max-Forwards: 70
Call-ID: invut.0ha0isndaksdjadsfij34n23d
CSeq: 235448 INVITE
Via: SIP/2.0/UDP somehost.example.com;branch=z9hG4bKkdjuw
Content-Type: application/unknownformat
Content-Length: 40

<audio>
 <pcmu port="443"/>
</audio>
"""
)


def test_3_3_6_invut_unknown_content_type():
    """Parsed; the application answers 415 with an Accept header for the media type
    `content_type` names."""
    msg = request(INVUT)
    assert msg.content_type == "application/unknownformat"
    assert msg.body == b'<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n'


REGAUT01 = crlf(
    """REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=87321hj23128
Max-Forwards: 8
Call-ID: regaut01.0ha0isndaksdj
CSeq: 9338 REGISTER
Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw
Authorization: NoOneKnowsThisScheme opaque-data=here
Content-Length:0

"""
)


def test_3_3_7_regaut01_unknown_authorization_scheme():
    """Parsed; the Authorization value reaches digest auth as text, which ignores the
    unknown scheme and challenges (401)."""
    msg = request(REGAUT01)
    assert msg.headers.get("Authorization") == "NoOneKnowsThisScheme opaque-data=here"
    assert msg.body == b""


MULTI01 = crlf(
    """INVITE sip:user@company.com SIP/2.0
Contact: <sip:caller@host25.example.net>
Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw
Max-Forwards: 70
CSeq: 5 INVITE
Call-ID: multi01.98asdh@192.0.2.1
CSeq: 59 INVITE
Call-ID: multi01.98asdh@192.0.2.2
From: sip:caller@example.com;tag=3413415
To: sip:user@example.com
To: sip:other@example.net
From: sip:caller@example.net;tag=2923420123
Content-Type: application/sdp
l: 154
Contact: <sip:caller@host36.example.net>
Max-Forwards: 5

"""
    + sdp("192.0.2.25", "192.0.2.25")
)


def test_3_3_8_multi01_multiple_values_in_single_value_required_fields():
    assert "more than one" in rejected(MULTI01).reason


MCL01 = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423
To: sip:user@example.com
From: sip:other@example.net;tag=3923942
Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf
CSeq: 15932 OPTIONS
Content-Length: 13
Max-Forwards: 60
Content-Length: 5
Content-Type: text/plain

There's no way to know how many octets are supposed to be here.
"""
)


def test_3_3_9_mcl01_multiple_content_length_values():
    """400 over UDP; over TCP the stream cannot be framed and the connection is closed."""
    assert "more than one Content-Length" in rejected(MCL01).reason
    with pytest.raises(ParseError) as info:
        StreamFramer().feed(MCL01)
    assert "Content-Length" in info.value.reason


BCAST = crlf(
    """SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23
Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host28.example.com>

"""
    + sdp("192.0.2.198", "192.0.2.198")
)


def test_3_3_10_bcast_200_ok_with_broadcast_via():
    """Parsed; whoever would forward it sees the broadcast sent-by and must not."""
    msg = response(BCAST)
    assert [v.host for v in msg.vias] == ["192.0.2.198", "255.255.255.255"]


ZEROMF = crlf(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=3ghsd41
Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas
CSeq: 39234321 OPTIONS
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i
Max-Forwards: 0
Content-Length: 0

"""
)


def test_3_3_11_zeromf_max_forwards_of_zero():
    """Legal: a proxy answers 483, an endpoint (our OPTIONS handler) answers normally."""
    assert request(ZEROMF).max_forwards == 0


CPARAM01 = crlf(
    """REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards: 70
From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe
To: sip:watson@example.com
Call-ID: cparam01.70710@saturn.example.com
CSeq: 2 REGISTER
Contact: sip:+19725552222@gw1.example.net;unknownparam
l: 0

"""
)


def test_3_3_12_cparam01_register_with_contact_header_parameter():
    """After an addr-spec the parameter is a contact-param, not a URI parameter."""
    (contact,) = request(CPARAM01).contacts
    assert contact.has_param("unknownparam") and contact.param("unknownparam") is None
    assert contact.sip_uri.params == ()
    assert contact.sip_uri.user == "+19725552222"


CPARAM02 = crlf(
    """REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards: 70
From: sip:watson@example.com;tag=838293
To: sip:watson@example.com
Call-ID: cparam02.70710@saturn.example.com
CSeq: 3 REGISTER
Contact: <sip:+19725552222@gw1.example.net;unknownparam>
l: 0

"""
)


def test_3_3_13_cparam02_register_with_url_parameter():
    (contact,) = request(CPARAM02).contacts
    assert contact.sip_uri.has_param("unknownparam")
    assert contact.params == ()


REGESCRT = crlf(
    """REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=8
Max-Forwards: 70
Call-ID: regescrt.k345asrl3fdbv@192.0.2.1
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>
L:0

"""
)


def test_3_3_14_regescrt_register_with_url_escaped_header():
    """Parsed; the registrar stores the contact with its escaped header and never turns
    it into a real Route."""
    (contact,) = request(REGESCRT).contacts
    assert contact.sip_uri.headers == "Route=%3Csip:sip.example.com%3E"
    assert unquote(contact.sip_uri.headers) == "Route=<sip:sip.example.com>"
    assert contact.sip_uri.host == "example.com"


SDP01 = crlf(
    """INVITE sip:user@example.com SIP/2.0
To: sip:j_user@example.com
Contact: <sip:caller@host15.example.net>
From: sip:caller@example.net;tag=234
Max-Forwards: 5
Call-ID: sdp01.ndaksdj9342dasdd
Accept: text/nobodyKnowsThis
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw
Content-Length: 150
Content-Type: application/sdp

"""
    + sdp("192.0.2.5", "192.0.2.5")
)


def test_3_3_15_sdp01_unacceptable_accept_offering():
    """Parsed; the application sees it cannot answer in any accepted type (406)."""
    msg = request(SDP01)
    assert msg.headers.get_all("Accept") == ["text/nobodyKnowsThis"]
    assert msg.content_type == "application/sdp" and len(msg.body) == 150


# 3.4 Backward compatibility -------------------------------------------------------------

INV2543_BODY = (
    "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.5\ns=-\nc=IN IP4 192.0.2.5\nt=0 0\n"
    "m=audio 49217 RTP/AVP 0\n"
)
INV2543 = crlf(
    """INVITE sip:UserB@example.com SIP/2.0
Via: SIP/2.0/UDP iftgw.example.com
From: <sip:+13035551111@ift.client.example.net;user=phone>
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.com
CSeq: 56 INVITE
Content-Type: application/sdp

"""
    + INV2543_BODY
)


def test_3_4_1_inv2543_invite_with_rfc_2543_syntax():
    """No branch, no From tag, no Max-Forwards, no Content-Length: over UDP the body is the
    rest of the datagram. The transaction layer falls back to RFC 2543 matching."""
    msg = request(INV2543)
    assert msg.top_via.branch is None
    assert msg.from_.tag is None
    assert "Max-Forwards" not in msg.headers and msg.max_forwards == 70
    assert "Content-Length" not in msg.headers
    assert msg.body == crlf(INV2543_BODY)
    # user=phone after an addr-spec is a header parameter in RFC 3261's grammar.
    assert msg.to.param("user") == "phone"
    assert msg.from_.sip_uri.param("user") == "phone"
    # Over TCP a message without Content-Length cannot be framed.
    assert "Content-Length" in rejected(INV2543, stream=True).reason


def test_every_valid_message_survives_a_round_trip():
    for data in (WSINV, INTMETH, ESC01, ESCNULL, ESC02, LWSDISP, LONGREQ, DBLREQ, SEMIURI):
        msg = parse_message(data)
        assert bytes(reparsed(msg)) == bytes(msg)
    for data in (TRANSPORTS, MPART01, UNREASON, NOREASON, BADBRANCH, INV2543, REGESCRT):
        msg = parse_message(data)
        assert bytes(reparsed(msg)) == bytes(msg)
