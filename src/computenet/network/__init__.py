"""The network between sites and user regions: latency (measured or modelled from distance),
bandwidth, egress price and transfer time."""

from computenet.network.distance import (
    FIBRE_KM_PER_MS,
    DistanceModel,
    fibre_bound_ms,
    haversine_km,
)
from computenet.network.links import Links, PairLink, Place
from computenet.network.matrices import (
    MATRIX_FORMATS,
    LatencyMatrix,
    read_aws_cloudping,
    read_gcp_raw,
    read_gcp_zone_matrix,
    read_matrix,
)
from computenet.network.transfer import (
    Transfer,
    plan_transfer,
    transfer_cost_cny,
    transfer_time_s,
)

__all__ = [
    "FIBRE_KM_PER_MS",
    "MATRIX_FORMATS",
    "DistanceModel",
    "LatencyMatrix",
    "Links",
    "PairLink",
    "Place",
    "Transfer",
    "fibre_bound_ms",
    "haversine_km",
    "plan_transfer",
    "read_aws_cloudping",
    "read_gcp_raw",
    "read_gcp_zone_matrix",
    "read_matrix",
    "transfer_cost_cny",
    "transfer_time_s",
]
