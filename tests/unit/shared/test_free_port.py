"""free_port never hands out a port twice before its service binds it."""

from __future__ import annotations

import socket

from docflow_local.processes import free_port


def test_ports_handed_out_together_are_distinct() -> None:
    # The harnesses pick a stack's ports in a row before any service binds
    # them; one fault run once got the same port for two services.
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)


def test_a_handed_out_port_is_free_to_bind() -> None:
    port = free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        assert server.getsockname()[1] == port
