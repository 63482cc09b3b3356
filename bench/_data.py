"""Where the benchmarks find the shared public data, and the zones they replay on."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("COMPUTENET_SHARED_DATA", ROOT.parent / "shared" / "data"))
CARBON_DIR = DATA / "carbon" / "greendcc_ci_2023"
PRICE_DIR = DATA / "price" / "greendcc_prices_2023_utc_usd"
LATENCY_FILE = DATA / "latency" / "gcp_latency_matrix_by_emaps_zone.csv"
OPENB = DATA / "gpu_traces" / "alibaba_v2023_openb_pod_list_default.csv"

# The ten zones with both hourly carbon and hourly prices for 2023 in the shared data.
ZONES = [
    "AU-NSW",
    "BR-SP",
    "DE-LU",
    "IN-WE",
    "JP-TK",
    "SG",
    "US-CAL-CISO",
    "US-MIDA-PJM",
    "US-NY-NYIS",
    "US-TEX-ERCO",
]
