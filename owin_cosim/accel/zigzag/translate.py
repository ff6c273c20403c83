"""A chip spec's core and a layer as ZigZag 3.9 input documents (plain data, no ZigZag import).

=====================  ===============================================================
spec                   ZigZag
=====================  ===============================================================
PE mesh                ``operational_array``: ``D1`` = ``pe_mesh_x``, ``D2`` =
                       ``pe_mesh_y``, ``unit_energy`` = the MAC energy
storage level          a memory, innermost first; ``size`` in bits; one read and one
                       write port (read and write bandwidths apart, as Timeloop and the
                       ``loopnest`` backend treat them), ``bandwidth_min`` one word,
                       ``bandwidth_max`` the level's bandwidth in bits per cycle (rounded
                       down: ZigZag's bandwidths are integers; unlimited = 2**20 words)
energies               per access of ``bandwidth_max`` bits: the per-word energy times
                       the words in it, so ZigZag's access counts (in units of
                       ``bandwidth_max``, one-word granularity) cost what the spec says
per-PE level           ``served_dimensions: []`` (one per PE); shared levels serve
                       ``[D1, D2]``
=====================  ===============================================================

**Operands.** ZigZag has no bypass search: which levels hold which operand is hardware.
The per-PE scratchpad holds the weights (``I2``) and the partial sums (``O``); inputs
stream from the global buffer, which with DRAM holds all three operands. (Measured on
ResNet-18 and depthwise layers: weights alone in the scratchpad send every partial sum
to the global buffer each cycle, up to 8x slower when the mesh is not reducing over
``C``; all three there overrun its 2-word ports on weight-stationary unrollings.) Every
operand and partial sum is one word (``word_bits``), as in the spec.

**Layers.** Every op kind is first turned into Timeloop's CNN-layer instance by
:func:`~owin_cosim.accel.problem.cnn_layer_instance` (channel-wise layers: channels
folded into ``N`` with ``C = M = 1``, the conversion the other backends use), then into
ZigZag's convolution ``O[b][k][oy][ox] += W[k][c][fy][fx] * I[b][c][iy][ix]`` with
``B = N, K = M, OY = P, OX = Q, FY = R, FX = S`` and ``iy = Hstride*oy + Hdilation*fy``,
``ix = Wstride*ox + Wdilation*fx``. A matrix product is the ``R = S = 1`` case.

**Spatial unrolling.** ``template`` (the default) fixes it to the loop-nest model's best
spatial template (:func:`~owin_cosim.accel.loopnest.backend.spatial_templates`: the
pair of dimensions filling the most PEs, e.g. ``C`` along ``D1`` and ``M`` along ``D2``
on a 16 x 16 mesh for ResNet-18's convolutions); ``zigzag`` leaves it to ZigZag's own
generator.
"""

from __future__ import annotations

import math
from typing import Any

from owin_cosim.accel.chip import CoreSpec, StorageLevel
from owin_cosim.accel.problem import cnn_layer_instance
from owin_cosim.accel.spec import ChipSpec
from owin_cosim.errors import ConfigError
from owin_cosim.workload.graph import Layer

__all__ = [
    "ZIGZAG_DIMS",
    "hardware_doc",
    "mapping_doc",
    "spatial_unrolling",
    "workload_doc",
]

#: Timeloop CNN-layer dimension -> ZigZag loop dimension.
ZIGZAG_DIMS: dict[str, str] = {
    "N": "B",
    "M": "K",
    "C": "C",
    "P": "OY",
    "Q": "OX",
    "R": "FY",
    "S": "FX",
}
_UNLIMITED_WORDS = 2**20  # words per cycle standing in for "no bandwidth limit"
_DRAM_BITS = 2**48  # DRAM has no capacity in the spec


def _bandwidth_bits(words_per_cycle: float, word_bits: int) -> int:
    if math.isinf(words_per_cycle):
        return _UNLIMITED_WORDS * word_bits
    return max(1, math.floor(words_per_cycle * word_bits))


def _operands(core: CoreSpec, index: int) -> list[str]:
    if index == len(core.levels) - 1:
        return ["I2", "O"]  # the per-PE scratchpad: weights and partial sums
    return ["I1", "I2", "O"]


def _served(core: CoreSpec, level: StorageLevel, file: Any) -> list[str]:
    if level.instances == 1:
        return ["D1", "D2"]
    if level.instances == core.num_pes:
        return []
    raise ConfigError(
        file,
        level.key,
        f"the zigzag backend needs a storage level with 1 instance or one per PE "
        f"({core.num_pes}); {level.name} has {level.instances}",
    )


def _port(name: str, kind: str, bw: int, word_bits: int, alloc: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "bandwidth_min": min(word_bits, bw),
        "bandwidth_max": bw,
        "allocation": alloc,
    }


def _memory(chip: ChipSpec, index: int) -> dict[str, Any]:
    core, bits = chip.core, chip.word_bits
    level = core.levels[index]
    ops = _operands(core, index)
    rbw = _bandwidth_bits(level.read_bw_words_per_cycle, bits)
    wbw = _bandwidth_bits(level.write_bw_words_per_cycle, bits)
    reads = [f"{op}, {d}" for op in ops for d in (("tl", "th") if op == "O" else ("tl",))]
    writes = [f"{op}, {d}" for op in ops for d in (("fh", "fl") if op == "O" else ("fh",))]
    size = _DRAM_BITS if level.size_words is None else level.size_words * bits
    return {
        "size": size,
        "r_cost": level.read_energy_pJ * rbw / bits,
        "w_cost": level.write_energy_pJ * wbw / bits,
        "area": 0.0,
        "latency": 1,
        "operands": ops,
        "ports": [
            _port("r_port_1", "read", rbw, bits, reads),
            _port("w_port_1", "write", wbw, bits, writes),
        ],
        "served_dimensions": _served(core, level, chip.path),
    }


def hardware_doc(chip: ChipSpec) -> dict[str, Any]:
    """ZigZag's accelerator document for one core of ``chip`` (see the module doc).

    >>> from pathlib import Path
    >>> from owin_cosim.accel import spec as accel_spec
    >>> chip = accel_spec.load_chip_spec(
    ...     Path(accel_spec.__file__).parents[2] / "accel_specs" / "mc4.yaml")
    >>> hw = hardware_doc(chip)
    >>> list(hw["memories"]), hw["operational_array"]["sizes"]
    (['pe_spad', 'glb', 'DRAM'], [16, 16])
    >>> hw["memories"]["glb"]["size"], hw["memories"]["glb"]["ports"][0]["bandwidth_max"]
    (2097152, 512)
    """
    core = chip.core
    memories = {core.levels[i].name: _memory(chip, i) for i in reversed(range(len(core.levels)))}
    return {
        "name": f"{chip.name}_core",
        "memories": memories,
        "operational_array": {
            "unit_energy": core.mac_energy_pJ,
            "unit_area": 0.0,
            "dimensions": ["D1", "D2"],
            "sizes": [core.pe_mesh_x, core.pe_mesh_y],
        },
    }


def spatial_unrolling(chip: ChipSpec, layer: Layer) -> dict[str, tuple[str, int]]:
    """The loop-nest model's best spatial template for ``layer``, as ZigZag's unrolling.

    Returns ``{"D1": (zigzag_dim, factor), "D2": ...}``; ``{}`` when no two dimensions
    can be unrolled (every dimension but one is 1).

    >>> from pathlib import Path
    >>> from owin_cosim.accel import spec as accel_spec
    >>> from owin_cosim.workload.graph import conv2d
    >>> chip = accel_spec.load_chip_spec(
    ...     Path(accel_spec.__file__).parents[2] / "accel_specs" / "mc4.yaml")
    >>> spatial_unrolling(chip, conv2d("c", C=64, M=64, P=56, Q=56, R=3, S=3))
    {'D1': ('C', 16), 'D2': ('K', 16)}
    """
    from owin_cosim.accel.loopnest.backend import core_levels, spatial_templates

    levels, _, mesh = core_levels(chip)
    problem = {d: v for d, v in cnn_layer_instance(layer).items() if d in ZIGZAG_DIMS}
    templates = spatial_templates(problem, levels, mesh, 1)
    if not templates:
        return {}
    target = next(iter(templates[0].targets.values()))
    # spatial_templates writes the X-axis dimension first, then the Y-axis one.
    out: dict[str, tuple[str, int]] = {}
    for axis, dim in zip(("D1", "D2"), target.permutation[:2], strict=True):
        if target.factors.get(dim, 1) > 1:
            out[axis] = (ZIGZAG_DIMS[dim], int(target.factors[dim]))
    return out


def mapping_doc(unrolling: dict[str, tuple[str, int]] | None) -> list[dict[str, Any]]:
    """ZigZag's mapping document: a fixed spatial unrolling, or ``None`` for ZigZag's own.

    >>> mapping_doc({"D1": ("C", 16), "D2": ("K", 16)})[0]["spatial_mapping"]
    {'D1': ['C, 16'], 'D2': ['K, 16']}
    """
    entry: dict[str, Any] = {
        "name": "default",
        "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"},
    }
    if unrolling is not None:
        # A dimension left out gets an unrolling of 1 (the generator would fill it).
        entry["spatial_mapping"] = {
            axis: [f"{dim}, {factor}"]
            for axis, (dim, factor) in {"D1": ("K", 1), "D2": ("C", 1), **unrolling}.items()
        }
    return [entry]


def workload_doc(layer: Layer, word_bits: int) -> list[dict[str, Any]]:
    """ZigZag's workload document: ``layer`` as one convolution (see the module doc).

    >>> from owin_cosim.workload.graph import matmul
    >>> doc = workload_doc(matmul("fc", rows=1, in_features=512, out_features=1000), 16)[0]
    >>> dict(zip(doc["loop_dims"], doc["loop_sizes"]))
    {'B': 1, 'K': 1000, 'C': 512, 'OY': 1, 'OX': 1, 'FY': 1, 'FX': 1}
    """
    p = cnn_layer_instance(layer)
    dims = ["N", "M", "C", "P", "Q", "R", "S"]
    return [
        {
            "id": 0,
            "name": "layer",
            "operator_type": "Conv",
            "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
            "dimension_relations": [
                f"ix={p['Wstride']}*ox+{p['Wdilation']}*fx",
                f"iy={p['Hstride']}*oy+{p['Hdilation']}*fy",
            ],
            "loop_dims": [ZIGZAG_DIMS[d] for d in dims],
            "loop_sizes": [p[d] for d in dims],
            "operand_precision": {
                "W": word_bits,
                "I": word_bits,
                "O": word_bits,
                "O_final": word_bits,
            },
            # Both operands come from outside the workload (DRAM): constants to ZigZag.
            "operand_source": {"I": 0, "W": 0},
        }
    ]
