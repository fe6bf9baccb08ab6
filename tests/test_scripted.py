"""``punchlab peer``'s switches become the PeerConfig the scripted peer runs with."""

from __future__ import annotations

from punchlab.cli import build_parser
from punchlab.peer import PeerConfig
from punchlab.scripted import _config


def config_for(*switches: str) -> PeerConfig:
    return _config(build_parser().parse_args(["peer", "--server", "http://x", *switches]))


def test_private_endpoints_are_on_unless_switched_off() -> None:
    assert config_for().private is True
    assert config_for("--no-private").private is False
    # The two switches are independent: --no-private leaves the ladder on.
    assert config_for("--no-private").ladder is True
    assert config_for("--no-private", "--no-ladder").ladder is False
