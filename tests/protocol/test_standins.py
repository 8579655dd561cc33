"""Stand-in modules lent while ``websockets`` loads: nothing else sees them, and
``websockets`` behaves as it does with the real modules.

Each case runs in a fresh interpreter: this one has imported everything already.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from tests.support.fresh import run_python
from wsprobe.protocol._standins import StandIn, lent


def run_fresh(code: str) -> str:
    return run_python("-c", textwrap.dedent(code)).stdout


def test_the_client_leaves_the_lent_modules_unimported_and_real_on_import() -> None:
    out = run_fresh(
        """
        import sys
        import wsprobe.client
        lent = ["importlib.metadata", "secrets", "hashlib", "random", "platform"]
        print(*[name for name in lent if name in sys.modules])
        import hashlib, importlib.metadata, platform, random, secrets
        from wsprobe.protocol._standins import StandIn
        modules = [hashlib, importlib.metadata, platform, random, secrets]
        print(*[type(module).__name__ for module in modules])
        print(len(secrets.token_hex(8)), platform.system() == __import__("os").uname().sysname)
        """
    )
    assert out == "\nmodule module module module module\n16 True\n"


def test_websockets_keys_masks_and_ids_as_with_the_real_modules() -> None:
    out = run_fresh(
        """
        import wsprobe.client
        import base64, hashlib, uuid
        from websockets import frames, utils
        print(type(frames.secrets).__name__, type(utils.hashlib).__name__)
        key = utils.generate_key()
        print(len(base64.b64decode(key)))
        expected = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        print(utils.accept_key(key) == expected)
        # An attribute the stand-in does not offer comes from the real module.
        print(utils.hashlib.md5(b"x").hexdigest() == hashlib.md5(b"x").hexdigest())
        print(uuid._LINUX == (__import__("platform").system() == "Linux"))
        frame = frames.Frame(frames.Opcode.TEXT, b"hello")
        print(len(frame.serialize(mask=True, extensions=[])) == 2 + 4 + 5)
        """
    )
    assert out == "StandIn StandIn\n16\nTrue\nTrue\nTrue\nTrue\n"


def test_a_server_imported_after_the_client_gets_real_modules() -> None:
    # The agent and `wsprobe serve` import websockets' asyncio server after the client.
    out = run_fresh(
        """
        import asyncio
        import wsprobe
        from wsprobe.protocol._websockets import asyncio_serve

        async def echo(connection):
            async for message in connection:
                await connection.send(message)
            print(type(connection.id).__name__)

        async def main():
            server = await asyncio_serve(echo, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reply = await wsprobe.send_recv_async(f"ws://127.0.0.1:{port}/", "hi")
            await asyncio.sleep(0.1)
            server.close()
            await server.wait_closed()
            print(reply)

        asyncio.run(main())
        """
    )
    assert out == "UUID\nhi\n"


def test_lent_lends_only_what_is_not_imported() -> None:
    real = sys.modules["json"]
    with lent(StandIn("json"), StandIn("wsprobe_test_absent", answer=42)):
        assert sys.modules["json"] is real
        import wsprobe_test_absent  # type: ignore[import-not-found]
        from wsprobe_test_absent import answer  # the import system asks for __path__

        assert wsprobe_test_absent.answer == answer == 42
    assert "wsprobe_test_absent" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        _ = wsprobe_test_absent.anything_else


def test_a_stand_in_resolves_to_the_real_module_while_lent() -> None:
    sys.modules.pop("colorsys", None)
    with lent(StandIn("colorsys")):
        import colorsys

        assert type(colorsys) is StandIn
        # Not offered: the real module is imported and takes the name back.
        assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
        assert type(sys.modules["colorsys"]) is not StandIn
    assert type(sys.modules["colorsys"]) is not StandIn


def test_the_cli_dataclasses_stand_ins() -> None:
    out = run_fresh(
        """
        import sys
        from wsprobe.cli import _import_dataclasses
        _import_dataclasses()
        print("inspect" in sys.modules, "copy" in sys.modules)
        import dataclasses

        @dataclasses.dataclass
        class Point:
            x: int
            y: list[int]

        print(Point.__doc__)
        print(dataclasses.asdict(Point(1, [2])))
        print(type(dataclasses.inspect).__name__, "inspect" in sys.modules)
        """
    )
    assert out == ("False False\nPoint(x: int, y: list[int])\n{'x': 1, 'y': [2]}\nStandIn True\n")


def test_a_thread_importing_a_lent_module_meanwhile_gets_the_real_functions() -> None:
    # sys.modules is the process's: another thread that imports `secrets` while the
    # client loads is handed the stand-in for good, and must see `secrets` as it is.
    out = run_fresh(
        """
        import sys, threading
        lending, done = threading.Event(), threading.Event()
        seen = []

        class Pause:
            # Holds the client's import inside the lending until the other thread ran.
            def find_spec(self, name, path=None, target=None):
                if name == "websockets.frames":
                    lending.set()
                    done.wait(10)
                return None

        def other() -> None:
            lending.wait(10)
            import secrets
            for call in (lambda: secrets.token_bytes(), lambda: secrets.token_bytes(nbytes=8)):
                try:
                    seen.append(len(call()))
                except TypeError as exc:
                    seen.append(type(exc).__name__)
            done.set()

        sys.meta_path.insert(0, Pause())
        thread = threading.Thread(target=other)
        thread.start()
        import wsprobe.client
        thread.join()
        print(*seen)
        """
    )
    assert out == "32 8\n"
