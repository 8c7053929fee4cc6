"""``taiinet sim``: size an overlay (or a DHT) in the discrete-event simulator.

Each simulation is its own module ``taiinet/cli/sim_<name>.py`` exposing
``register(sim_subparsers)``, which adds its parser and sets ``handler`` with
``set_defaults``.  To add one, append its module name to ``SIM_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

SIM_MODULES: tuple[str, ...] = ("sim_overlay", "sim_dht", "sim_signal", "sim_pubsub", "sim_stream")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim", help="run a seeded simulation of the overlay or the DHT",
        description="Discrete-event simulations of TaiiNet's protocols; same seed, same run.")
    sims = parser.add_subparsers(dest="simulation", required=True, metavar="SIMULATION")
    for name in SIM_MODULES:
        importlib.import_module(f"taiinet.cli.{name}").register(sims)
