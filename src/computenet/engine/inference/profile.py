"""A replica's throughput, time to first token and power as functions of its load.

Measured on one H100 80GB HBM3 (``../shared/data/measured/h100_llm_inference_hf_eager.json``
and its README): a Llama-2-7B-shaped decoder (6.74 B parameters, bf16) served with Hugging
Face eager ``generate``, 512-token prompts, 128 new tokens; idle with the model loaded 119 W.
Two profiles follow from it (``PROFILES``):

* ``hf-eager`` — the measured table as it is (decode tokens/s and board power at batch 1, 8,
  32, 64). A floor: eager ``generate`` is held back by per-token launch overhead.
* ``memory-bound`` (the default) — a tuned server (continuous batching) whose decode step
  reads the weights once per step plus each sequence's KV cache, at the 2.67 TB/s measured
  on the same H100 (``h100_power_profile.json``, memory-bound phase at 502 W): about
  200 tokens/s for one sequence, as the README's ceiling says. Modelled from those
  measurements, and labelled so.

Prefill is compute bound: 64 x 512 prompt tokens in 0.975 s measured, 33,600 tokens/s.

Other accelerator types are scaled from the H100 by their specifications and labelled
``scaled``: decode throughput by memory bandwidth (decoding is memory bound), prefill by
dense bf16 TFLOPS, power by board power (as ``model.AcceleratorType.profile`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

from computenet.errors import InputError, UnknownNameError
from computenet.model import H100_BOARD_W, AcceleratorType

H100_SOURCE = (
    "measured: one H100 80GB HBM3, Llama-2-7B shape bf16, HF eager generate, 2026-11-26 "
    "(shared/data/measured/h100_llm_inference_hf_eager.json)"
)
H100_IDLE_LOADED_W = 119.2  # board power, idle with the model loaded (measured)
H100_PREFILL_TOKENS_PER_S = 64 * 512 / 0.9749  # batch 64 x 512-token prompts (measured)
H100_MEMORY_TB_PER_S = 2.67  # weights read in the memory-bound phase (measured)
H100_MEMORY_BOUND_W = 501.9  # board power in the memory-bound phase (measured)
H100_SPEC_TB_PER_S = 3.35  # H100 SXM HBM3 bandwidth (NVIDIA datasheet)
H100_TFLOPS = 989.0

HF_EAGER_POINTS: tuple[tuple[int, float, float], ...] = (
    (1, 11.8, 142.3),
    (8, 102.4, 156.1),
    (32, 421.2, 204.7),
    (64, 982.0, 291.0),
)
"""(batch, decode tokens/s of all sequences, board power W) measured on the H100."""

MEMORY_TB_PER_S: dict[str, tuple[float, str]] = {
    "H100": (3.35, "H100 SXM 80GB HBM3: 3.35 TB/s (NVIDIA datasheet)"),
    "A100": (2.039, "A100 SXM 80GB HBM2e: 2.039 TB/s (NVIDIA datasheet)"),
    "H20": (4.0, "H20 96GB HBM3: 4.0 TB/s (NVIDIA China product brief, press)"),
    "L20": (0.864, "L20 48GB GDDR6: 864 GB/s (NVIDIA datasheet)"),
    "Ascend910B": (1.6, "Ascend 910B 64GB HBM2e: about 1.6 TB/s (unofficial, press)"),
    "MLU370": (0.6144, "MLU370-X8 48GB LPDDR5: 614.4 GB/s (Cambricon product page)"),
}
"""Memory bandwidth per accelerator type (spec sheets; decode throughput scales with it)."""

DEFAULT_WEIGHTS_GB = 13.5  # Llama-2-7B bf16 weights, as measured (13.5 GB read per token)
DEFAULT_KV_GB_PER_SEQUENCE = 0.34  # 0.5 MB per token (32 layers x 4096 x 2 x bf16) x 672


@dataclass(frozen=True)
class ReplicaProfile:
    """One replica (``accelerators`` of one type) serving one model.

    ``points`` are (batch, decode tokens/s of all sequences, board power W of the whole
    replica); ``idle_w`` the replica's board power with the model loaded and nothing to do;
    ``prefill_tokens_per_s`` how fast it reads prompts. ``kind`` is ``measured``,
    ``modelled`` or ``scaled``; ``source`` says from what.
    """

    accelerator: str
    accelerators: int
    points: tuple[tuple[int, float, float], ...]
    idle_w: float
    prefill_tokens_per_s: float
    kind: str
    source: str

    @property
    def max_batch(self) -> int:
        return self.points[-1][0]

    @property
    def decode_tokens_per_s(self) -> float:
        """Decode throughput at the largest batch that fits (tokens/s of all sequences)."""
        return self.points[-1][1]

    @property
    def busy_w(self) -> float:
        """Board power at the largest batch (W, whole replica)."""
        return self.points[-1][2]

    def prefill_s(self, prompt_tokens: float) -> float:
        """Seconds to read a prompt of ``prompt_tokens`` (compute bound)."""
        return prompt_tokens / self.prefill_tokens_per_s

    def service_s(self, prompt_tokens: float, output_tokens: float) -> float:
        """Replica-seconds one request takes at full batch: its prefill plus its share of
        the decode steps."""
        return self.prefill_s(prompt_tokens) + output_tokens / self.decode_tokens_per_s

    def capacity_rps(self, prompt_tokens: float, output_tokens: float) -> float:
        """Requests per second the replica completes when fully loaded."""
        return 1.0 / self.service_s(prompt_tokens, output_tokens)

    def power_w(self, load: float) -> float:
        """Board power (W) at a load share in [0, 1] of ``capacity_rps``: linear from the
        loaded idle power to the power at full batch (modelled between the points)."""
        u = min(1.0, max(0.0, load))
        return self.idle_w + (self.busy_w - self.idle_w) * u

    def queue_s(self, load: float, prompt_tokens: float, output_tokens: float) -> float:
        """Modelled wait for the prefill slot at a load share ``load`` (< 1): an M/M/1 queue
        on prefill, whose own utilisation is ``load`` x the prefill share of the work."""
        prefill = self.prefill_s(prompt_tokens)
        rho = min(0.99, max(0.0, load)) * prefill / self.service_s(prompt_tokens, output_tokens)
        return prefill * rho / (1.0 - rho)


def _h100_points(profile: str, kv_gb: float, weights_gb: float) -> tuple[list, float, str, str]:
    if profile == "hf-eager":
        return list(HF_EAGER_POINTS), H100_IDLE_LOADED_W, "measured", H100_SOURCE
    points = []
    for batch in (1, 8, 32, 64):
        step_s = (weights_gb + batch * kv_gb) / (H100_MEMORY_TB_PER_S * 1000.0)
        points.append((batch, batch / step_s, H100_MEMORY_BOUND_W))
    src = (
        "modelled: decode step reads the weights once plus each sequence's KV cache at the "
        f"{H100_MEMORY_TB_PER_S} TB/s and {H100_MEMORY_BOUND_W} W measured on the H100 "
        "(shared/data/measured/h100_power_profile.json)"
    )
    return points, H100_IDLE_LOADED_W, "modelled", src


PROFILES = ("memory-bound", "hf-eager")


def replica_profile(
    acc: AcceleratorType,
    *,
    accelerators: int = 1,
    profile: str = "memory-bound",
    weights_gb: float = DEFAULT_WEIGHTS_GB,
    kv_gb_per_sequence: float = DEFAULT_KV_GB_PER_SEQUENCE,
) -> ReplicaProfile | None:
    """The load profile of a replica of ``accelerators`` x ``acc``, or ``None`` when the
    weights and one sequence's KV cache do not fit its memory. The batch is capped where
    the KV cache fills 90 % of memory."""
    if profile not in PROFILES:
        raise UnknownNameError("replica profile", profile, PROFILES)
    if accelerators < 1:
        raise InputError(
            f"accelerators per replica {accelerators} < 1", where="accelerators_per_replica"
        )
    points, idle_w, kind, source = _h100_points(profile, kv_gb_per_sequence, weights_gb)
    memory = 0.9 * acc.memory_gb * accelerators
    fits = int((memory - weights_gb) // kv_gb_per_sequence) if kv_gb_per_sequence > 0 else 64
    if fits < 1:
        return None
    bw = MEMORY_TB_PER_S.get(acc.id)
    same = acc.id == "H100" and acc.power_w == H100_BOARD_W
    bw_ratio = accelerators * (bw[0] if bw else acc.memory_gb / 80 * 2.0) / H100_SPEC_TB_PER_S
    flops_ratio = accelerators * acc.tflops_bf16 / H100_TFLOPS
    power_ratio = accelerators * acc.power_w / H100_BOARD_W
    if same and accelerators == 1:
        bw_ratio = flops_ratio = power_ratio = 1.0
    else:
        kind = "scaled"
        source = (
            f"scaled from the H100 ({source}): decode by memory bandwidth x{bw_ratio:.3f} "
            f"({bw[1] if bw else 'assumption: 2 TB/s per 80 GB'}), prefill by bf16 TFLOPS "
            f"x{flops_ratio:.3f}, power by board power x{power_ratio:.3f}"
        )
    kept = [p for p in points if p[0] <= fits] or [points[0]]
    scaled = tuple((b, tps * bw_ratio, w * power_ratio) for b, tps, w in kept)
    return ReplicaProfile(
        accelerator=acc.id,
        accelerators=accelerators,
        points=scaled,
        idle_w=idle_w * power_ratio,
        prefill_tokens_per_s=H100_PREFILL_TOKENS_PER_S * flops_ratio,
        kind=kind,
        source=source,
    )
