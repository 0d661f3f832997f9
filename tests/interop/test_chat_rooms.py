"""build/chat-server's rooms (one topic per room) with Python websockets clients: lines stay
in their room, joins and leaves are told to the room only, room names are checked."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from interop_helpers import BUILD, start_listening

CHAT_SERVER = BUILD / "chat-server"


@pytest.fixture
def chat():
    assert CHAT_SERVER.exists(), f"{CHAT_SERVER} missing: run `make all`"
    proc, address = start_listening([CHAT_SERVER, "127.0.0.1:0"], "chat-server")
    try:
        yield f"ws://{address}/chat", proc
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


def recv_until(ws, line):
    """Lines received up to and including `line`."""
    seen = []
    while True:
        got = ws.recv(timeout=10)
        seen.append(got)
        if got == line:
            return seen


def test_lines_stay_in_their_room(chat):
    url, proc = chat
    with connect(f"{url}?name=alice&room=red") as alice, connect(f"{url}?name=bob&room=red") as bob:
        recv_until(alice, "bob joined")
        with connect(f"{url}?name=carol&room=blue") as carol, connect(f"{url}?name=dave") as dave:
            recv_until(carol, "carol joined")
            recv_until(dave, "dave joined")
            alice.send("hello red")
            assert recv_until(bob, "alice: hello red")[-1] == "alice: hello red"
            carol.send("hello blue")
            assert recv_until(carol, "carol: hello blue") == ["carol: hello blue"]
            dave.send("hello lobby")
            # Each room heard only its own: the next line each sees is its own room's.
            assert recv_until(dave, "dave: hello lobby") == ["dave: hello lobby"]
            bob.send("still red")
            assert recv_until(alice, "bob: still red") == ["alice: hello red", "bob: still red"]
        # Carol and dave left their rooms; red was not told.
        bob.close()
        assert recv_until(alice, "bob left") == ["bob left"]
    log = proc.describe()
    assert "[red] alice: hello red" in log and "[blue] carol: hello blue" in log, log


def test_bad_room_names_are_refused(chat):
    url, _ = chat
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{url}?name=eve&room={'x' * 40}")
    assert refused.value.response.status_code == 400
    with pytest.raises(InvalidStatus):
        connect(f"{url}?name=eve&room=a%0Ab")
