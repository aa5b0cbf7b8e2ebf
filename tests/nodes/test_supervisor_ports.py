"""Ports written into node directories lie outside the kernel's ephemeral range.

A port from ``bind(0)`` is an ephemeral port, which the kernel may hand to an
outgoing connection between provisioning and the node's start; the red-team
fixture once failed with ``address already in use`` that way.
"""

from __future__ import annotations

import socket

from federation.supervisor import _ephemeral_low, free_port


def test_free_ports_are_below_the_ephemeral_range_and_bindable():
    low = _ephemeral_low()
    ports = {free_port() for _ in range(50)}
    assert all(1024 <= p < low for p in ports), sorted(ports)
    assert len(ports) > 1  # drawn at random, not one fixed port
    for p in list(ports)[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", p))


def test_a_taken_port_is_not_returned():
    low = _ephemeral_low()
    held = []
    try:
        # hold a port and check free_port never returns a port that is in use
        for _ in range(20):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", free_port()))
            s.listen()
            held.append(s)
        taken = {s.getsockname()[1] for s in held}
        assert all(p < low for p in taken)
        assert not taken & {free_port() for _ in range(200)}
    finally:
        for s in held:
            s.close()
