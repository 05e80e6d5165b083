"""Property tests draw undisturbed by other tests' threads, and the same way on every run.

Other tests leave threads behind that use `random` (the Prefect events client pings its
websocket from its event-loop thread; each ping draws `random.getrandbits`). Hypothesis
fails a draw during which the global `random` state changed, so such a thread made
`test_build_271_answers_read_back_active` fail with FlakyStrategyDefinition once in two runs.
tests/conftest.py gives every thread but the main one its own generator.
"""

from __future__ import annotations

import asyncio
import random
import threading

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve


def in_a_thread(work: object) -> None:
    thread = threading.Thread(target=work)  # type: ignore[arg-type]
    thread.start()
    thread.join()


def test_another_threads_random_calls_leave_the_global_state_alone() -> None:
    before = random.getstate()
    in_a_thread(lambda: (random.getrandbits(32), random.random(), random.choice("ab")))
    assert random.getstate() == before


def test_a_websocket_ping_on_another_thread_leaves_the_global_state_alone() -> None:
    """The cause seen in the suite: websockets draws each ping's payload from `random`."""

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async def ping_once() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}") as client:
                await (await client.ping())

    before = random.getstate()
    in_a_thread(lambda: asyncio.run(ping_once()))
    assert random.getstate() == before


def drawn_while_a_thread_uses_random(value: int) -> int:
    in_a_thread(lambda: random.getrandbits(32))
    return value


@given(st.integers().map(drawn_while_a_thread_uses_random))
def test_a_draw_during_which_another_thread_uses_random_is_not_flaky(value: int) -> None:
    assert isinstance(value, int)


def test_the_profile_draws_the_same_examples_on_every_run() -> None:
    profile = hypothesis_settings.default
    assert profile.derandomize
    assert profile.database is None
    assert profile.deadline is None
