"""Tests for sipws.core.digest: RFC 7616 vectors, nonces, replay, and the auth decision."""

import hashlib

import pytest

from sipws.core.digest import (
    AuthResult,
    Credentials,
    MemoryReplayGuard,
    NonceFactory,
    NonceStatus,
    authenticate,
    challenge,
    expected_response,
    ha1,
    parse_credentials,
    verify,
)

# RFC 7616 §3.9.1
USER, PASSWORD, RFC_REALM = "Mufasa", "Circle of Life", "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_MD5_RESPONSE = "8ca523f5e9506fed4657c9700eebdbec"
RFC_SHA256_RESPONSE = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def rfc_authorization(algorithm: str, response: str) -> str:
    return (
        f'Digest username="{USER}", realm="{RFC_REALM}", uri="/dir/index.html", '
        f'algorithm={algorithm}, nonce="{RFC_NONCE}", nc=00000001, '
        f'cnonce="{RFC_CNONCE}", qop=auth, response="{response}", opaque="{RFC_OPAQUE}"'
    )


# RFC 7616 vectors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "response"), [("MD5", RFC_MD5_RESPONSE), ("SHA-256", RFC_SHA256_RESPONSE)]
)
def test_rfc7616_example_verifies(algorithm, response):
    credentials = parse_credentials(rfc_authorization(algorithm, response))
    assert credentials is not None
    assert credentials.algorithm == algorithm
    assert credentials.nc == 1
    assert credentials.qop == "auth"
    assert credentials.opaque == RFC_OPAQUE
    stored = ha1(USER, RFC_REALM, PASSWORD, algorithm)
    assert verify(credentials, method="GET", ha1=stored)


@pytest.mark.parametrize(
    ("algorithm", "response"), [("MD5", RFC_MD5_RESPONSE), ("SHA-256", RFC_SHA256_RESPONSE)]
)
def test_rfc7616_example_fails_with_another_password(algorithm, response):
    credentials = parse_credentials(rfc_authorization(algorithm, response))
    assert credentials is not None
    assert not verify(credentials, method="GET", ha1=ha1(USER, RFC_REALM, "x", algorithm))
    assert not verify(credentials, method="POST", ha1=ha1(USER, RFC_REALM, PASSWORD, algorithm))


def test_ha1_is_hash_of_user_realm_password():
    assert ha1("a", "r", "p", "MD5") == hashlib.md5(b"a:r:p").hexdigest()
    assert ha1("a", "r", "p", "SHA-256") == hashlib.sha256(b"a:r:p").hexdigest()
    with pytest.raises(ValueError):
        ha1("a", "r", "p", "SHA-1")  # type: ignore[arg-type]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_rfc2069_response_without_qop():
    stored = ha1("bob", "example.com", "pw")
    response = md5(f"{stored}:n1:{md5('REGISTER:sip:example.com')}")
    credentials = Credentials("bob", "example.com", "n1", "sip:example.com", response)
    assert verify(credentials, method="REGISTER", ha1=stored)


def test_md5_sess_and_auth_int():
    stored = ha1("bob", "example.com", "pw")
    body = b"<presence/>"
    session_ha1 = md5(f"{stored}:n1:c1")
    ha2 = md5(f"PUBLISH:sip:bob@example.com:{hashlib.md5(body).hexdigest()}")
    response = md5(f"{session_ha1}:n1:0000000a:c1:auth-int:{ha2}")
    credentials = parse_credentials(
        'Digest username="bob", realm="example.com", nonce="n1", uri="sip:bob@example.com", '
        f'response="{response}", algorithm=MD5-sess, qop=auth-int, nc=0000000a, cnonce="c1"'
    )
    assert credentials is not None and credentials.nc == 10
    assert verify(credentials, method="PUBLISH", ha1=stored, body=body)
    assert not verify(credentials, method="PUBLISH", ha1=stored, body=b"<other/>")


def test_unknown_algorithm_never_verifies():
    credentials = Credentials("bob", "r", "n", "u", "00", algorithm="SHA-512-256")
    assert not verify(credentials, method="GET", ha1="00")


# Parsing --------------------------------------------------------------------------------


def test_parse_quoted_strings_with_escapes_and_commas():
    credentials = parse_credentials(
        'digest  username = "a \\"quoted\\" name, really" ,realm="r\\\\m",'
        'nonce="n,1", uri="sip:x@y;a=b,c", response="AB"'
    )
    assert credentials == Credentials(
        username='a "quoted" name, really', realm="r\\m", nonce="n,1", uri="sip:x@y;a=b,c",
        response="AB",
    )  # fmt: skip


def test_parse_defaults_and_unknown_params():
    credentials = parse_credentials(
        'Digest username="u", realm="r", nonce="n", uri="sip:r", response="x", foo=bar'
    )
    assert credentials is not None
    assert credentials.algorithm == "MD5"
    assert credentials.qop is None and credentials.nc is None and credentials.cnonce is None
    assert credentials.userhash is False


def test_parse_userhash_and_extended_username():
    credentials = parse_credentials(
        'Digest username*=UTF-8\'\'J%C3%A4s%C3%B8n%20Doe, realm="r", nonce="n", '
        'uri="/", response="x", userhash=false'
    )
    assert credentials is not None and credentials.username == "Jäsøn Doe"
    flagged = parse_credentials(
        'Digest username="h", realm="r", nonce="n", uri="/", response="x", userhash=true'
    )
    assert flagged is not None and flagged.userhash


@pytest.mark.parametrize(
    "value",
    [
        "Basic dXNlcjpwYXNz",
        "Digest",
        'Digest username="u", realm="r", nonce="n", uri="/"',  # no response
        'Digest username="u", realm="r", nonce="n", uri="/", response="x", qop=auth',  # no nc
        'Digest username="u", realm="r", nonce="n", uri="/", response="x", '
        'qop=auth, nc=zz, cnonce="c"',
        'Digest username="u", username="v", realm="r", nonce="n", uri="/", response="x"',
        'Digest username="u" realm="r", nonce="n", uri="/", response="x"',  # missing comma
        'Digest username="u, realm="r", nonce="n", uri="/", response="x"',  # open quote
        'Digest username="u", realm=, nonce="n", uri="/", response="x"',
        "",
    ],
)
def test_parse_rejects(value):
    assert parse_credentials(value) is None


def test_challenge_header_value():
    assert challenge("example.com", "abc") == (
        'Digest realm="example.com", nonce="abc", algorithm=MD5, qop="auth"'
    )
    assert challenge('ex"ample', "abc", "SHA-256", stale=True, opaque="o") == (
        'Digest realm="ex\\"ample", nonce="abc", algorithm=SHA-256, qop="auth", '
        'stale=true, opaque="o"'
    )


def test_challenge_round_trips_through_the_parser():
    value = challenge('a "b", c', "n") + ', username="u", uri="/", response="x", nc=1, cnonce=c'
    credentials = parse_credentials(value)
    assert credentials is not None and credentials.realm == 'a "b", c'


# Nonces ---------------------------------------------------------------------------------

SECRET = b"0123456789abcdef"


def test_nonce_valid_then_stale():
    nonces = NonceFactory(SECRET, lifetime=300)
    nonce = nonces.make(1000.0)
    assert nonces.check(nonce, 1000.0) is NonceStatus.VALID
    assert nonces.check(nonce, 1300.0) is NonceStatus.VALID
    assert nonces.check(nonce, 1301.0) is NonceStatus.STALE


def test_nonce_is_shared_by_nodes_with_the_same_secret():
    nonce = NonceFactory(SECRET, lifetime=300).make(1000.0)
    assert NonceFactory(SECRET, lifetime=300).check(nonce, 1001.0) is NonceStatus.VALID
    other = NonceFactory(b"another secret", lifetime=300)
    assert other.check(nonce, 1001.0) is NonceStatus.INVALID


def test_nonces_differ_within_one_second():
    nonces = NonceFactory(SECRET, lifetime=300)
    assert nonces.make(1000.0) != nonces.make(1000.0)


def test_tampered_nonce_is_invalid():
    nonces = NonceFactory(SECRET, lifetime=300)
    stamp, salt, mac = nonces.make(1000.0).split(".")
    newer = format(int(stamp, 16) + 100, "x")
    assert nonces.check(f"{newer}.{salt}.{mac}", 1200.0) is NonceStatus.INVALID
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    assert nonces.check(f"{stamp}.{salt}.{flipped}", 1000.0) is NonceStatus.INVALID


@pytest.mark.parametrize("nonce", ["", "abc", "3e8..x", "3e8.a.b.c", "xyz.salt.mac", RFC_NONCE])
def test_malformed_nonce_is_invalid(nonce):
    assert NonceFactory(SECRET, lifetime=300).check(nonce, 1000.0) is NonceStatus.INVALID


def test_nonce_from_the_future_is_invalid():
    nonces = NonceFactory(SECRET, lifetime=300, max_skew=5)
    nonce = nonces.make(2000.0)
    assert nonces.check(nonce, 1996.0) is NonceStatus.VALID
    assert nonces.check(nonce, 1990.0) is NonceStatus.INVALID


# Replay guard ---------------------------------------------------------------------------


def test_replay_guard_accepts_only_increasing_nc():
    guard = MemoryReplayGuard(lifetime=300)
    assert not guard.seen("n", 1, 0.0)
    assert guard.seen("n", 1, 1.0)
    assert not guard.seen("n", 2, 2.0)
    assert not guard.seen("n", 5, 3.0)
    assert guard.seen("n", 4, 4.0)
    assert not guard.seen("other", 1, 5.0)
    assert guard.seen("new", 0, 5.0)


def test_replay_guard_forgets_after_lifetime():
    guard = MemoryReplayGuard(lifetime=300)
    guard.seen("old", 1, 0.0)
    guard.seen("young", 1, 200.0)
    guard.seen("young", 1, 301.0)
    assert len(guard) == 1


def test_replay_guard_evicts_oldest_when_full():
    guard = MemoryReplayGuard(lifetime=300, max_entries=2)
    guard.seen("a", 1, 0.0)
    guard.seen("b", 1, 1.0)
    guard.seen("c", 1, 2.0)
    assert len(guard) == 2
    assert not guard.seen("a", 1, 3.0)  # forgotten, hence accepted again
    assert guard.seen("c", 1, 3.0)


# authenticate() -------------------------------------------------------------------------

REALM = "example.com"
NOW = 10_000.0
USERS = {"alice": "secret"}


def lookup(username: str, algorithm: str) -> str | None:
    password = USERS.get(username)
    return None if password is None else ha1(username, REALM, password, algorithm)  # type: ignore[arg-type]


def authorization(
    nonce: str,
    *,
    username: str = "alice",
    password: str = "secret",
    realm: str = REALM,
    nc: int = 1,
    algorithm: str = "MD5",
    method: str = "REGISTER",
) -> str:
    uri = f"sip:{REALM}"
    credentials = Credentials(
        username, realm, nonce, uri, "", algorithm=algorithm, cnonce="c0ffee", qop="auth",
        nc=nc, nc_hex=f"{nc:08x}",
    )  # fmt: skip
    response = expected_response(
        credentials,
        method=method,
        ha1=ha1(username, realm, password, algorithm.removesuffix("-sess")),
    )
    return (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm={algorithm}, cnonce="c0ffee", qop=auth, '
        f"nc={nc:08x}"
    )


@pytest.fixture
def nonces() -> NonceFactory:
    return NonceFactory(SECRET, lifetime=300)


def run(values, nonces, replay=None, *, now=NOW, method="REGISTER") -> AuthResult:
    return authenticate(
        values,
        method=method,
        realm=REALM,
        lookup_ha1=lookup,
        nonces=nonces,
        replay=replay if replay is not None else MemoryReplayGuard(lifetime=300),
        now=now,
    )


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"])
def test_authenticate_ok(nonces, algorithm):
    result = run([authorization(nonces.make(NOW), algorithm=algorithm)], nonces)
    assert result == AuthResult(ok=True, username="alice", stale=False, reason="ok")


def test_authenticate_without_credentials(nonces):
    assert run([], nonces).reason == "no credentials"
    assert run(["Basic dXNlcjpwYXNz"], nonces).reason == "no credentials"


def test_authenticate_malformed_digest(nonces):
    result = run(['Digest username="alice"'], nonces)
    assert not result.ok and result.reason == "bad credentials"


def test_authenticate_realm_mismatch(nonces):
    result = run([authorization(nonces.make(NOW), realm="elsewhere.org")], nonces)
    assert not result.ok and result.reason == "realm mismatch"


def test_authenticate_picks_credentials_of_our_realm(nonces):
    nonce = nonces.make(NOW)
    values = [authorization(nonce, realm="elsewhere.org"), authorization(nonce)]
    assert run(values, nonces).ok


def test_authenticate_unknown_user(nonces):
    result = run([authorization(nonces.make(NOW), username="mallory")], nonces)
    assert (result.ok, result.reason, result.username) == (False, "unknown user", "mallory")


def test_authenticate_wrong_password(nonces):
    result = run([authorization(nonces.make(NOW), password="guess")], nonces)
    assert (result.ok, result.stale, result.reason) == (False, False, "wrong password")


def test_authenticate_wrong_method(nonces):
    result = run([authorization(nonces.make(NOW))], nonces, method="SUBSCRIBE")
    assert result.reason == "wrong password"


def test_authenticate_stale_nonce_asks_for_stale_challenge(nonces):
    value = authorization(nonces.make(NOW))
    result = run([value], nonces, now=NOW + 301)
    assert (result.ok, result.stale, result.reason) == (False, True, "stale nonce")


def test_authenticate_stale_nonce_with_wrong_password_is_not_stale(nonces):
    value = authorization(nonces.make(NOW), password="guess")
    result = run([value], nonces, now=NOW + 301)
    assert (result.stale, result.reason) == (False, "wrong password")


def test_authenticate_forged_nonce(nonces):
    result = run([authorization(RFC_NONCE)], nonces)
    assert (result.ok, result.reason) == (False, "invalid nonce")


def test_authenticate_replay(nonces):
    replay = MemoryReplayGuard(lifetime=300)
    nonce = nonces.make(NOW)
    assert run([authorization(nonce, nc=1)], nonces, replay).ok
    replayed = run([authorization(nonce, nc=1)], nonces, replay)
    assert (replayed.ok, replayed.stale, replayed.reason) == (False, True, "replayed nonce")
    assert run([authorization(nonce, nc=2)], nonces, replay).ok
    assert run([authorization(nonce, nc=3)], nonces, replay).ok


def test_wrong_password_does_not_burn_nonce_counts(nonces):
    replay = MemoryReplayGuard(lifetime=300)
    nonce = nonces.make(NOW)
    assert run([authorization(nonce, nc=9, password="guess")], nonces, replay).reason == (
        "wrong password"
    )
    assert run([authorization(nonce, nc=1)], nonces, replay).ok


def test_rfc2069_credentials_use_their_nonce_once(nonces):
    replay = MemoryReplayGuard(lifetime=300)
    nonce = nonces.make(NOW)
    stored = ha1("alice", REALM, "secret")
    response = md5(f"{stored}:{nonce}:{md5('REGISTER:sip:example.com')}")
    value = (
        f'Digest username="alice", realm="{REALM}", nonce="{nonce}", '
        f'uri="sip:example.com", response="{response}"'
    )
    assert run([value], nonces, replay).ok
    assert run([value], nonces, replay).reason == "replayed nonce"


def test_authenticate_refuses_userhash_and_unknown_algorithms(nonces):
    nonce = nonces.make(NOW)
    userhash = authorization(nonce) + ", userhash=true"
    assert run([userhash], nonces).reason == "bad credentials"
    unknown = authorization(nonce).replace("algorithm=MD5", "algorithm=SHA-512-256")
    assert run([unknown], nonces).reason == "bad credentials"
