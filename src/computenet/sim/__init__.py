"""Deterministic discrete-event replay of GPU traces against real grid signals.

``traces`` reads public traces, ``workload`` fills what they lack and builds the built-in
demo workload, ``simulator`` runs the engine in the loop with a simulated executor,
``metrics`` and ``compare`` turn runs into figures, ``report`` into an HTML page.
"""

from computenet.sim.compare import Comparison, compare
from computenet.sim.metrics import PolicyMetrics, summarise
from computenet.sim.simulator import Outage, SimConfig, SimResult, simulate
from computenet.sim.traces import Trace, TraceJob, load_trace
from computenet.sim.workload import FillOptions, Workload, demo_trace, materialise

__all__ = [
    "Comparison",
    "FillOptions",
    "Outage",
    "PolicyMetrics",
    "SimConfig",
    "SimResult",
    "Trace",
    "TraceJob",
    "Workload",
    "compare",
    "demo_trace",
    "load_trace",
    "materialise",
    "simulate",
    "summarise",
]
