"""Executors run placed jobs where a site's engine runs them.

``base`` is the interface, ``registry`` the kinds by name; each engine is one module that
registers itself when this package is imported (its client library is imported only when
an executor of its kind is built).
"""

from computenet.executors import (  # noqa: F401  (each import registers its kind)
    kubernetes,
    local,
    ray,
    simulated,
    slurm,
)
