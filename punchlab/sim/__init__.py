"""A simulated internet with NAT boxes, on a virtual clock.

It drives the very same protocol cores as the asyncio driver, so what works
here works on real sockets, and the other way round. Quick start::

    from punchlab.sim import punch
    result = punch("port-restricted-cone", "symmetric", seed=0)
    print(result.summary())

Build any topology by hand with :class:`Network`.
"""

from punchlab.sim.birthday import BirthdayCurve, birthday_curve, birthday_formula
from punchlab.sim.engine import Scheduler
from punchlab.sim.links import LinkConfig
from punchlab.sim.nat import (
    BEHAVIOURS,
    PRESET_NAMES,
    PRESETS,
    Behaviour,
    NatBox,
    NatConfig,
    PortAllocation,
    nat_config,
)
from punchlab.sim.network import Network, Realm
from punchlab.sim.nodes import SimPeer, SimServer
from punchlab.sim.scenario import (
    MatrixResult,
    PunchResult,
    ScaleResult,
    punch,
    scale,
    success_matrix,
)

__all__ = [
    "BEHAVIOURS",
    "PRESETS",
    "PRESET_NAMES",
    "Behaviour",
    "BirthdayCurve",
    "LinkConfig",
    "MatrixResult",
    "NatBox",
    "NatConfig",
    "Network",
    "PortAllocation",
    "PunchResult",
    "Realm",
    "ScaleResult",
    "Scheduler",
    "SimPeer",
    "SimServer",
    "birthday_curve",
    "birthday_formula",
    "nat_config",
    "punch",
    "scale",
    "success_matrix",
]
