"""The gateway's pure parts: upstream settings, routes, directory encoding and rewriting."""

from __future__ import annotations

import pytest

from supervisor.opencode.gateway import Gateway, Upstream, new_secret
from supervisor.opencode.gateway_directory import (
    HEADER,
    anchor,
    decode_directory,
    encode_directory,
    named_directories,
    without_keys,
)

from .helpers import PASSWORD, SECRET


def test_upstream_from_env_reads_credentials_as_opencode_clients_do() -> None:
    env = {"OPENCODE_SERVER_PASSWORD": "pw", "OPENCODE_SERVER_USERNAME": "me"}
    up = Upstream.from_env("http://127.0.0.1:4096", env)
    assert (up.username, up.password, up.host, up.port, up.base) == (
        "me",
        "pw",
        "127.0.0.1",
        4096,
        "",
    )
    assert up.authorization() == b"Basic bWU6cHc="
    plain = Upstream.from_env("http://localhost:4096/base/", {"OPENCODE_SERVER_PASSWORD": ""})
    assert (plain.username, plain.password, plain.base) == ("opencode", None, "/base")
    assert plain.authorization() is None


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1:1", "http://u:p@127.0.0.1:1", "http://127.0.0.1:1/?q", "127.0.0.1:1"],
)
def test_upstream_rejects_what_it_cannot_use(url: str) -> None:
    with pytest.raises(ValueError):
        Upstream(url)


def test_password_stays_out_of_repr_and_urls() -> None:
    up = Upstream("http://127.0.0.1:4096", password=PASSWORD)
    assert PASSWORD not in repr(up)
    gateway = Gateway(up, lambda s: None)
    gateway._port = 5000
    url = gateway.url_for(SECRET)
    assert url == f"http://127.0.0.1:5000/s/{SECRET}"
    assert PASSWORD not in url


def test_gateway_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError):
        Gateway(Upstream("http://127.0.0.1:1"), lambda s: None, host="0.0.0.0")


def test_secrets_are_fresh_and_url_safe() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and len(a) == 32
    gateway = Gateway(Upstream("http://127.0.0.1:1"), lambda s: None)
    gateway._port = 1
    gateway.url_for(a)
    with pytest.raises(ValueError):
        gateway.url_for("short")
    with pytest.raises(ValueError):
        gateway.url_for("x" * 20 + "/..")


def test_routes() -> None:
    gateway = Gateway(Upstream("http://127.0.0.1:1"), {SECRET: "/home/a"}.get)
    ok = gateway.route(f"/s/{SECRET}/session/x?directory=%2Fa".encode())
    assert (ok.directory, ok.path, ok.query) == ("/home/a", "/session/x", "directory=%2Fa")
    assert gateway.route(f"/s/{SECRET}".encode()).path == "/"
    assert gateway.route(f"/s/{SECRET}?a=1".encode()).path == "/"
    assert gateway.route(f"/s/{SECRET}//event".encode()).path == "/event"
    assert gateway.route(b"/project/current").status == 401
    assert gateway.route(b"/s/").status == 403
    assert gateway.route(f"/s/{SECRET}x/path".encode()).status == 403
    assert gateway.route(f"/s/{SECRET[:-1]}/path".encode()).status == 403
    assert gateway.route(b"http://example/s/x").status == 400


@pytest.mark.parametrize(
    ("directory", "encoded"),
    [
        ("/tmp/a", "%2Ftmp%2Fa"),
        ("/tmp/a b/ü!'()*~-_.", "%2Ftmp%2Fa%20b%2F%C3%BC!'()*~-_."),
        ("/x/%41+&=?#", "%2Fx%2F%2541%2B%26%3D%3F%23"),
    ],
)
def test_directory_encoding_is_encode_uri_component(directory: str, encoded: str) -> None:
    assert encode_directory(directory) == encoded
    assert decode_directory(encoded) == directory


def test_decoding_keeps_what_decode_uri_component_rejects() -> None:
    assert decode_directory("/tmp/100%") == "/tmp/100%"
    assert decode_directory("%2Fa%zz") == "%2Fa%zz"
    assert decode_directory("%C3") == "%C3"
    assert decode_directory("/plain/ü") == "/plain/ü"


def test_named_directories_from_query_and_header() -> None:
    query = "a=1&directory=%2Fq+1&location%5Bdirectory%5D=%2Floc&directory="
    headers = [(HEADER, b"%2Fh"), (b"x-other", b"/no")]
    assert named_directories(query, headers) == ["/q 1", "/loc", "/h"]
    assert named_directories("", []) == []


def test_anchor_drops_query_directories_and_sets_the_header() -> None:
    query, headers = anchor(
        "x=%2F&directory=%2Fo&location[directory]=%2Fo&y=2",
        [(HEADER, b"%2Fo"), (b"accept", b"*/*")],
        "/home/a b",
    )
    assert query == "x=%2F&y=2"
    assert headers == [(b"accept", b"*/*"), (HEADER, b"%2Fhome%2Fa%20b")]


def test_without_keys_keeps_other_pieces_byte_for_byte() -> None:
    assert without_keys("a=%2f&auth_token=x&b", frozenset({"auth_token"})) == "a=%2f&b"
