"""``movers sim``: run the venue simulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

SIM_KEY_ID = "sim-key"


def add_parser(commands: Any) -> None:
    sim = commands.add_parser(
        "sim",
        help="run local Polymarket and Kalshi servers (the venue simulator)",
        description=(
            "Serve a deterministic universe of Polymarket and Kalshi markets on 127.0.0.1 in the "
            "venues' own formats (REST and websockets), optionally following a scenario file."
        ),
    )
    sim.add_argument("--scenario", metavar="PATH", help="scenario YAML (universe, timeline)")
    sim.add_argument("--seed", type=int, help="overrides the scenario's seed")
    sim.add_argument("--speed", type=float, help="simulated seconds per real second")
    sim.add_argument("--polymarket", type=int, metavar="N", help="Polymarket markets")
    sim.add_argument("--kalshi", type=int, metavar="N", help="Kalshi markets")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim.add_argument(
        "--port",
        type=int,
        default=8700,
        metavar="BASE",
        help="gamma on BASE, clob (+ market websocket) BASE+1, data BASE+2, kalshi BASE+3; "
        "0 picks free ports (default 8700)",
    )
    sim.add_argument(
        "--kalshi-key",
        action="append",
        default=[],
        metavar="ID=PEM",
        help="accept this API key id with the RSA public key in file PEM (repeatable)",
    )
    sim.add_argument(
        "--kalshi-key-out",
        metavar="PATH",
        help=f"create a key pair, write the private key to PATH and accept it as {SIM_KEY_ID!r}",
    )


def run(args: argparse.Namespace) -> int:
    from exporter.errors import ConfigError
    from exporter.sim.scenario import load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ConfigError as exc:
        print(f"movers: {exc}", file=sys.stderr)
        return 2
    overrides: dict[str, Any] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.speed is not None:
        overrides["speed"] = args.speed
    universe = {
        k: v for k, v in (("polymarket", args.polymarket), ("kalshi", args.kalshi)) if v is not None
    }
    if universe:
        overrides["universe"] = scenario.universe.model_copy(update=universe)
    try:
        scenario = load_scenario(
            {**scenario.model_dump(by_alias=True, exclude_none=True), **overrides}
        )
        keys = _keys(args)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"movers: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve(scenario, args, keys))
    return 0


def _keys(args: argparse.Namespace) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for item in args.kalshi_key:
        key_id, sep, path = item.partition("=")
        if not sep:
            raise ValueError(f"--kalshi-key wants ID=PEM, got {item!r}")
        keys[key_id] = Path(path).read_bytes()
    if args.kalshi_key_out:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        out = Path(args.kalshi_key_out)
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(
                private.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        keys[SIM_KEY_ID] = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return keys


async def _serve(scenario: Any, args: argparse.Namespace, keys: dict[str, bytes]) -> None:
    from exporter.sim.server import ROLES, Simulator

    ports = {role: (args.port + i if args.port else 0) for i, role in enumerate(ROLES)}
    sim = Simulator(scenario, host=args.host, ports=ports, kalshi_keys=keys)
    urls = await sim.start()
    world = sim.world
    print(
        f"simulator up (seed {scenario.seed}, speed {scenario.speed:g}x): "
        f"{len(world.poly_markets)} Polymarket markets, {len(world.kalshi_markets)} Kalshi markets"
    )
    for name, url in (
        ("polymarket gamma", urls.gamma),
        ("polymarket clob", urls.clob),
        ("polymarket data", urls.data),
        ("polymarket websocket", urls.polymarket_ws),
        ("kalshi rest", urls.kalshi_rest),
        ("kalshi websocket", urls.kalshi_ws),
    ):
        print(f"  {name:<22} {url}")
    print("\nmovers.yaml to use it:")
    print(yaml.safe_dump({"venues": urls.venues()}, sort_keys=False), end="")
    if args.kalshi_key_out:
        print(
            f"\nKalshi key: MOVERS_KALSHI_API_KEY_ID={SIM_KEY_ID} "
            f"MOVERS_KALSHI_PRIVATE_KEY_FILE={args.kalshi_key_out}"
        )
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
