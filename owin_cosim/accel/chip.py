"""A validated multi-core accelerator: the chip, its core types and their storage levels
(per word), the 2-D mesh NoC, and the quantities derived from them (hop matrix, NoC
transfer time and energy).

A chip has one or more core types (:class:`CoreType`). Each carries a one-core view of the chip
(:attr:`CoreType.chip`: that core alone on the chip, with the chip's clock, word size and
whole DRAM), which is what a cost model is built on. A homogeneous spec has one type
named ``"core"``.

:func:`owin_cosim.accel.spec.load_chip_spec` builds a :class:`ChipSpec` from a spec file;
the classes here know nothing of the file format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from owin_cosim.workload.graph import OpKind

__all__ = ["LAYER_KINDS", "ChipSpec", "CoreSpec", "CoreType", "NocSpec", "StorageLevel"]

#: The layer kinds a core type may run (``OpKind`` values), in ``OpKind`` order.
LAYER_KINDS: tuple[str, ...] = tuple(k.value for k in OpKind)


@dataclass(frozen=True, slots=True)
class StorageLevel:
    """One storage level of a core, per word.

    Attributes
    ----------
    name : str
        Component name in the spec (``DRAM``, ``glb``, ``pe_spad``...).
    size_words : int or None
        Capacity of one instance in words (None for DRAM: unbounded).
    instances : int
        Copies in one core (1 for DRAM and the global buffer, one per PE for the
        scratchpad).
    read_bw_words_per_cycle, write_bw_words_per_cycle : float
        Bandwidth of one instance (``math.inf`` when the spec sets none). For DRAM: the
        whole chip's DRAM bandwidth, shared by reads and writes (what a core alone on
        the chip gets; the coordinator shares it between cores by contention).
    read_energy_pJ, write_energy_pJ : float
        Energy per word read or written (the action energy over the block size).
    component_class : str
        Timeloop/Accelergy class (``DRAM``, ``smartbuffer_SRAM``, ...).
    key : str
        Dotted key path of the component in the spec file (for error messages; ignored
        by equality).
    """

    name: str
    size_words: int | None
    instances: int
    read_bw_words_per_cycle: float
    write_bw_words_per_cycle: float
    read_energy_pJ: float
    write_energy_pJ: float
    component_class: str = ""
    #: Where the level is written (messages only: equality ignores it, so a core type's
    #: view equals its ``spec_doc`` parsed again).
    key: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class CoreSpec:
    """One core: storage levels from outermost (DRAM) to innermost, and the PE mesh.

    ``levels`` is always ``(DRAM, global buffer, PE scratchpad)``.
    """

    levels: tuple[StorageLevel, ...]
    pe_mesh_x: int
    pe_mesh_y: int
    mac_energy_pJ: float
    mac_name: str = "mac"

    @property
    def num_pes(self) -> int:
        """PEs (MAC units) in the core."""
        return self.pe_mesh_x * self.pe_mesh_y

    @property
    def peak_macs_per_cycle(self) -> int:
        """Peak MACs per cycle of the core (one per PE)."""
        return self.num_pes

    @property
    def dram(self) -> StorageLevel:
        """The off-chip level (outermost)."""
        return self.levels[0]

    @property
    def global_buffer(self) -> StorageLevel:
        """The core's shared on-chip buffer."""
        return self.levels[1]

    @property
    def pe_buffer(self) -> StorageLevel:
        """The per-PE scratchpad (innermost level)."""
        return self.levels[-1]


@dataclass(frozen=True, slots=True)
class NocSpec:
    """The 2-D mesh between cores (XY routing)."""

    topology: str
    mesh_x: int
    mesh_y: int
    link_bandwidth_bytes_per_cycle: float
    hop_latency_cycles: float
    energy_pJ_per_byte_hop: float


@dataclass(frozen=True)
class CoreType:
    """One kind of core on the chip: how many, which layer kinds it runs, and a one-core
    view of the chip to cost layers on.

    Equality and hashing ignore :attr:`chip` (:attr:`spec_doc` describes it fully), so
    a view that is its own core type compares without recursion.

    Attributes
    ----------
    name : str
        The type's name in the spec (``"core"`` for a homogeneous spec).
    count : int
        Cores of this type on the chip.
    runs : frozenset of str or None
        The layer kinds (``OpKind`` values) these cores run; None: every kind.
    chip : ChipSpec
        This core alone on the chip: one core on a 1 x 1 mesh, with the chip's clock,
        word size, whole DRAM bandwidth and DRAM energy. Its own ``core_types`` hold one
        type ``"core"`` whose ``chip`` is the view itself.
    spec_doc : dict
        That view as a homogeneous spec mapping (``chip``, ``architecture``,
        ``energy_pJ``): plain, JSON-ready data that ``parse_chip_spec`` turns back into
        :attr:`chip`; the same for the same file (cache digests, requests to a remote
        estimator).
    """

    name: str
    count: int
    runs: frozenset[str] | None
    chip: ChipSpec = field(repr=False, compare=False)
    spec_doc: dict[str, Any] = field(repr=False, hash=False)

    def runs_kind(self, kind: str) -> bool:
        """Whether cores of this type run layers of ``kind`` (an ``OpKind`` value)."""
        return self.runs is None or kind in self.runs


@dataclass(frozen=True)
class ChipSpec:
    """A validated multi-core accelerator spec.

    Cores are numbered row-major on the ``mesh_x x mesh_y`` mesh: core ``k`` sits at
    ``(k % mesh_x, k // mesh_x)``. The core types take the cores in the order listed:
    type 0 the first ``core_types[0].count`` cores, then type 1, and so on
    (:attr:`core_type_of`).

    :attr:`core` is the first core type's core: THE core of a homogeneous chip; of a
    heterogeneous chip, only the first type's (read :attr:`core_types` there).

    Examples
    --------
    >>> from pathlib import Path
    >>> from owin_cosim.accel import spec as accel_spec
    >>> d = Path(accel_spec.__file__).parents[2] / "accel_specs"
    >>> chip = accel_spec.load_chip_spec(d / "mc16.yaml")
    >>> chip.core_xy(6), chip.hops(0, 15), int(chip.hop_matrix().max())
    ((2, 1), 6, 6)
    >>> round(chip.noc_transfer_s(64, 0, 1) * 1e9, 3)   # 64 B / 32 B/cycle + 1 hop x 2
    4.0
    """

    name: str
    path: Path | None
    num_cores: int
    clock_hz: float
    word_bits: int
    core: CoreSpec
    noc: NocSpec
    #: Total DRAM bandwidth of the chip (bytes/s). Every core's DRAM level has all of it
    #: (a core alone gets the whole bandwidth); cores running at once share it by
    #: contention in the coordinator, not by a static partition.
    dram_bandwidth_Bps: float
    dram_energy_pJ_per_byte: float
    #: The core types in spec order. Left empty, a one-core chip is its own single type
    #: ``"core"`` (a view); a chip of several cores must give them.
    core_types: tuple[CoreType, ...] = ()
    #: The validated spec as plain data (without ``description``):
    #: ``parse_chip_spec(chip.spec_doc, chip.path) == chip``.
    spec_doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)
    #: Core number -> index into :attr:`core_types` (derived from the counts).
    core_type_of: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _hops: np.ndarray = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.num_cores != self.noc.mesh_x * self.noc.mesh_y:
            raise ValueError("num_cores must equal noc.mesh_x * noc.mesh_y")
        self._set_core_types()
        idx = np.arange(self.num_cores)
        x, y = idx % self.noc.mesh_x, idx // self.noc.mesh_x
        hops = np.abs(x[:, None] - x[None, :]) + np.abs(y[:, None] - y[None, :])
        hops = hops.astype(np.int64)
        hops.setflags(write=False)
        object.__setattr__(self, "_hops", hops)

    def _set_core_types(self) -> None:
        types = self.core_types
        if not types:
            if self.num_cores != 1:
                raise ValueError("a chip of several cores needs its core_types")
            # a one-core view is its own core type: a cycle, not a recursion
            types = (CoreType("core", 1, None, self, self.spec_doc),)
            object.__setattr__(self, "core_types", types)
        if sum(t.count for t in types) != self.num_cores:
            raise ValueError("the core types' counts must sum to num_cores")
        if types[0].chip.core != self.core:
            raise ValueError("core must be the first core type's core")
        of = tuple(i for i, t in enumerate(types) for _ in range(t.count))
        object.__setattr__(self, "core_type_of", of)

    def types_by_kind(self, kind: str) -> tuple[int, ...]:
        """Indices into :attr:`core_types` of the types that run layers of ``kind``.

        Raises
        ------
        ValueError
            ``kind`` is not an ``OpKind`` value.
        """
        if kind not in LAYER_KINDS:
            raise ValueError(f"unknown layer kind {kind!r}; expected one of {LAYER_KINDS}")
        return tuple(i for i, t in enumerate(self.core_types) if t.runs_kind(kind))

    def cores_of_type(self, index: int) -> tuple[int, ...]:
        """Core numbers of core type ``index`` (consecutive, row-major on the mesh)."""
        return tuple(k for k, t in enumerate(self.core_type_of) if t == index)

    # ---- sizes ---------------------------------------------------------------------
    @property
    def word_bytes(self) -> int:
        """Bytes per word (``word_bits / 8``)."""
        return self.word_bits // 8

    @property
    def mesh_x(self) -> int:
        """Cores along X of the chip mesh."""
        return self.noc.mesh_x

    @property
    def mesh_y(self) -> int:
        """Cores along Y of the chip mesh."""
        return self.noc.mesh_y

    @property
    def link_bytes_per_s(self) -> float:
        """NoC link bandwidth in bytes/s."""
        return self.noc.link_bandwidth_bytes_per_cycle * self.clock_hz

    @property
    def hop_latency_s(self) -> float:
        """NoC per-hop latency in seconds."""
        return self.noc.hop_latency_cycles / self.clock_hz

    # ---- the mesh ------------------------------------------------------------------
    def _check_core(self, core: int) -> None:
        if not 0 <= core < self.num_cores:
            raise ValueError(f"core {core} out of range 0..{self.num_cores - 1}")

    def core_xy(self, core: int) -> tuple[int, int]:
        """Mesh coordinates ``(x, y)`` of ``core`` (row-major numbering)."""
        self._check_core(core)
        return core % self.noc.mesh_x, core // self.noc.mesh_x

    def hops(self, a: int, b: int) -> int:
        """Hops between cores ``a`` and ``b`` under XY routing (Manhattan distance)."""
        self._check_core(a)
        self._check_core(b)
        return int(self._hops[a, b])

    def hop_matrix(self) -> np.ndarray:
        """Hops between every pair of cores: a read-only ``(cores, cores)`` int array."""
        return self._hops

    def noc_transfer_s(self, nbytes: float, src: int, dst: int) -> float:
        """Seconds to move ``nbytes`` from core ``src`` to ``dst`` (0 when equal).

        Serialisation on one link plus the per-hop latency:
        ``(nbytes / link_bandwidth + hops * hop_latency) / clock_hz``.
        """
        h = self.hops(src, dst)
        if h == 0:
            return 0.0
        cycles = nbytes / self.noc.link_bandwidth_bytes_per_cycle + h * self.noc.hop_latency_cycles
        return cycles / self.clock_hz

    def noc_energy_pJ(self, nbytes: float, src: int, dst: int) -> float:
        """Energy (pJ) of moving ``nbytes`` from ``src`` to ``dst``: bytes x hops x e."""
        return nbytes * self.hops(src, dst) * self.noc.energy_pJ_per_byte_hop
