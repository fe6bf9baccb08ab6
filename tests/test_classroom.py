"""Which server a notebook's real peers use: their own on loopback, or the class's."""

from __future__ import annotations

import pytest

from punchlab.aio import Peer
from punchlab.classroom import SERVER_ENV, is_loopback, notebook_server, peer_host_for


async def test_with_nothing_set_a_notebook_runs_its_own_server_on_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SERVER_ENV, raising=False)
    rendezvous = await notebook_server()
    assert rendezvous.server is not None
    try:
        assert rendezvous.url.startswith("http://127.0.0.1:")
        assert rendezvous.server.http_address is not None
        assert rendezvous.server.http_address[1] != 8088  # a port the system picked
        assert rendezvous.peer_host == "127.0.0.1"
        async with Peer(rendezvous.url, host=rendezvous.peer_host, name="student") as peer:
            assert await peer.register(timeout=5)
    finally:
        await rendezvous.server.close()


async def test_the_environment_names_the_class_server_and_nothing_is_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SERVER_ENV, "http://192.0.2.20:8088/")
    rendezvous = await notebook_server()
    assert rendezvous == ("http://192.0.2.20:8088", None, "0.0.0.0")


async def test_a_url_in_the_notebook_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SERVER_ENV, "http://192.0.2.20:8088")
    rendezvous = await notebook_server("http://127.0.0.1:9000")
    assert rendezvous == ("http://127.0.0.1:9000", None, "127.0.0.1")


def test_a_peer_binds_loopback_only_for_a_server_on_this_machine() -> None:
    assert peer_host_for("http://localhost:8088") == "127.0.0.1"
    assert peer_host_for("http://teacher.lan:8088") == "0.0.0.0"
    assert is_loopback("127.0.0.2") and not is_loopback("192.0.2.1")
