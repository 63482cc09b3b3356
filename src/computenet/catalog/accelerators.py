"""Accelerator types every network file may use without defining them (``CHINA_FACTS.md`` §5).

Dense FP16/BF16 TFLOPS, memory and board power as published; a network file's
``[accelerators.<id>]`` table adds a type or replaces one of these.
"""

from __future__ import annotations

from computenet.model import AcceleratorType

KNOWN_ACCELERATORS: dict[str, AcceleratorType] = {
    a.id: a
    for a in (
        AcceleratorType(
            "A100",
            "NVIDIA",
            312.0,
            80.0,
            400.0,
            source="A100 SXM 80GB: 312 TFLOPS, 80 GB HBM2e, 400 W "
            "[V2 glennklockwood.com] (CHINA_FACTS.md §5)",
        ),
        AcceleratorType(
            "H100",
            "NVIDIA",
            989.0,
            80.0,
            700.0,
            source="H100 SXM: 989 TFLOPS, 80 GB HBM3, 700 W "
            "[V2 boardor.com, lzwjava.github.io] (CHINA_FACTS.md §5)",
        ),
        AcceleratorType(
            "H20",
            "NVIDIA",
            148.0,
            96.0,
            400.0,
            source="H20: 148 TFLOPS, 96 GB HBM3, 400 W [V2 tomshardware, willitrunai] "
            "(CHINA_FACTS.md §5)",
        ),
        AcceleratorType(
            "L20",
            "NVIDIA",
            119.5,
            48.0,
            275.0,
            source="L20: 119.5 TFLOPS, 48 GB GDDR6 [V2 tomshardware]; 275 W [R] "
            "(CHINA_FACTS.md §5)",
        ),
        AcceleratorType(
            "Ascend910B",
            "Huawei",
            320.0,
            64.0,
            310.0,
            source="Ascend 910B: about 320 TFLOPS (unofficial), 64 GB HBM2e (another page "
            "says 32 GB: sources conflict), 310 W [V2 boardor.com] (CHINA_FACTS.md §5)",
        ),
        AcceleratorType(
            "MLU370",
            "Cambricon",
            96.0,
            48.0,
            250.0,
            source="MLU370-X8: 96 TFLOPS FP16, 48 GB LPDDR5, 250 W [V2 guangxilong.com] "
            "(CHINA_FACTS.md §5)",
        ),
    )
}
