"""Executors run placed jobs where a site's engine runs them.

``base`` is the interface, ``registry`` the kinds by name; each engine is one module that
registers itself when this package is imported (its client library is imported only when
an executor of its kind is built).
"""

from computenet.executors import (
    local,  # noqa: F401  (registers "local")
    slurm,  # noqa: F401  (registers "slurm")
)
