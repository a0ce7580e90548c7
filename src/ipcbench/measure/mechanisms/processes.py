"""``process_start``: the cost of starting a Process, per start method."""

from . import Mechanism

MECHANISMS = [
    Mechanism("process_start", "process", "Process.start() until the child runs (argument = payload)",
              patterns=("startup",)),
]
