"""A scenario compiled for scheduling: devices, the costed DAG, the NoC, the uplink.

:class:`Problem` is what policies plan on and what the coordinator executes: plain
arrays indexed by layer number, so that planning and the event loop stay fast on
thousands of layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from owin_cosim.accel.cost_model import CostModel
from owin_cosim.network.base import NetworkBackend, NetworkRef, UplinkDevice
from owin_cosim.system.options import (
    CoreTypeInfo,
    ExecOption,
    PartCost,
    cost_options,
    near_equal,
)
from owin_cosim.workload.graph import ModelGraph

__all__ = ["CompiledDag", "CostStats", "DeviceSpec", "Interconnect", "Problem", "split_payload"]


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A sensor node: one modality, one payload cut into chunks."""

    name: str
    modality: str
    distance_m: float
    tx_power_W: float
    payload_bytes: int
    chunks: int

    @property
    def chunk_bytes(self) -> tuple[int, ...]:
        """Sizes of the chunks, near-equal, in transmission order."""
        return split_payload(self.payload_bytes, self.chunks)

    def uplink(self) -> UplinkDevice:
        """What a network backend needs of this device."""
        return UplinkDevice(self.name, self.distance_m, self.tx_power_W)


def split_payload(nbytes: int, chunks: int) -> tuple[int, ...]:
    """Split ``nbytes`` into ``chunks`` near-equal parts (earlier parts one byte larger).

    >>> split_payload(10, 3)
    (4, 3, 3)
    """
    return near_equal(nbytes, chunks)


@dataclass(frozen=True)
class Interconnect:
    """The on-chip mesh as matrices over cores (seconds, hops)."""

    hops: np.ndarray  # (cores, cores) int
    hop_latency_s: float
    link_bytes_per_s: float
    energy_pJ_per_byte_hop: float

    @property
    def num_cores(self) -> int:
        return int(self.hops.shape[0])

    def _over(self, hops: np.ndarray, nbytes: float) -> np.ndarray:
        t: np.ndarray = np.where(
            hops > 0, nbytes / self.link_bytes_per_s + hops * self.hop_latency_s, 0.0
        )
        return t

    def transfer_s(self, nbytes: float, src: int) -> np.ndarray:
        """Time to move ``nbytes`` from core ``src`` to every core (0 on ``src``)."""
        return self._over(self.hops[src], nbytes)

    def gather_s(self, nbytes: float, sources: Sequence[int]) -> np.ndarray:
        """Time for every core to receive ``nbytes`` from each of ``sources``, sent in
        parallel (links not shared): the slowest source's transfer."""
        if len(sources) == 1:
            return self.transfer_s(nbytes, sources[0])
        moves: np.ndarray = self._over(self.hops[list(sources)], nbytes).max(axis=0)
        return moves


@dataclass
class CompiledDag:
    """The expanded, costed DAG as arrays indexed by layer number (topological order)."""

    names: list[str]
    groups: list[str]
    preds: list[list[int]]
    succs: list[list[int]]
    duration_s: np.ndarray
    cycles: np.ndarray
    energy_pJ: np.ndarray
    utilization: np.ndarray
    macs: np.ndarray
    out_bytes: np.ndarray
    #: Per layer: ``(device index, chunk index or -1 for all chunks)`` or None.
    needs: list[tuple[int, int] | None]
    #: Per layer: the ways it can run (core type, split, parts; see
    #: :mod:`owin_cosim.system.options`). None: one option per layer, on one core of
    #: any type, taking ``duration_s`` with no DRAM traffic (hand-built DAGs).
    options: list[tuple[ExecOption, ...]] | None = None
    rank_s: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.options is None:
            self.options = [
                (
                    ExecOption(
                        0,
                        "-",
                        (
                            PartCost(
                                float(self.duration_s[v]),
                                0.0,
                                0.0,
                                int(self.cycles[v]),
                                float(self.energy_pJ[v]),
                                int(self.macs[v]),
                                float(self.utilization[v]),
                            ),
                        ),
                    ),
                )
                for v in range(len(self.names))
            ]
        # Upward rank (HEFT): the longest compute path from the layer to the end.
        rank = self.duration_s.astype(float).copy()
        for v in range(len(self.names) - 1, -1, -1):
            if self.succs[v]:
                rank[v] += max(rank[s] for s in self.succs[v])
        self.rank_s = rank

    def __len__(self) -> int:
        return len(self.names)

    @property
    def layer_options(self) -> list[tuple[ExecOption, ...]]:
        """The options of every layer (never None after construction)."""
        assert self.options is not None
        return self.options

    @classmethod
    def build(
        cls,
        model: ModelGraph,
        costs: Sequence[CostModel],
        types: Sequence[CoreTypeInfo],
        devices: Sequence[DeviceSpec],
        word_bytes: int,
        progress: Callable[[int, int], None] | None = None,
        max_split: int | None = None,
    ) -> CompiledDag:
        """Expand chunks, order topologically, cost every layer's options.

        ``costs[t]`` prices layers on core type ``types[t]``. Each layer's summary
        arrays (``duration_s``, ``cycles``, ...) are those of its fastest option alone on
        the chip. ``progress(done, total)`` follows the distinct shapes costed.
        """
        chunks = {d.name: d.chunks for d in devices}
        dev_index = {d.name: i for i, d in enumerate(devices)}
        expanded = model.expand_chunks(chunks)
        layers = expanded.topological_layers()
        index = {layer.name: i for i, layer in enumerate(layers)}
        n = len(layers)
        options = cost_options(layers, costs, types, word_bytes, max_split, progress)
        best = [min(opts, key=lambda o: (o.alone_s, o.group, o.core_type)) for opts in options]
        dur = np.array([o.alone_s for o in best], dtype=float)
        cyc = np.array([o.cycles for o in best], dtype=float)
        en = np.array([o.energy_pJ for o in best], dtype=float)
        util = np.array([sum(p.utilization for p in o.parts) / o.group for o in best], dtype=float)
        macs = np.array([layer.macs for layer in layers], dtype=np.int64)
        out_bytes = np.array([layer.output_elems * word_bytes for layer in layers], dtype=float)
        preds = [[index[p] for p in expanded.graph.predecessors(layer.name)] for layer in layers]
        succs = [[index[s] for s in expanded.graph.successors(layer.name)] for layer in layers]
        needs: list[tuple[int, int] | None] = [None] * n
        for name, need in expanded.data_needs.items():
            needs[index[name]] = (dev_index[need.device], -1 if need.chunk is None else need.chunk)
        return cls(
            [layer.name for layer in layers],
            [layer.group for layer in layers],
            [sorted(p) for p in preds],
            [sorted(s) for s in succs],
            dur,
            cyc,
            en,
            util,
            macs,
            out_bytes,
            needs,
            options,
        )

    def subgraph_critical_path_s(self, members: Sequence[int]) -> float:
        """Longest compute path inside the given layers (e.g. one encoder)."""
        inside = set(members)
        longest: dict[int, float] = {}
        for v in sorted(inside):
            prev = [longest[p] for p in self.preds[v] if p in inside]
            longest[v] = (max(prev) if prev else 0.0) + float(self.duration_s[v])
        return max(longest.values(), default=0.0)

    def to_networkx(self) -> nx.DiGraph:
        """The DAG as a networkx graph over layer numbers (for checks and analysis)."""
        g = nx.DiGraph()
        g.add_nodes_from(range(len(self.names)))
        g.add_edges_from((p, v) for v in range(len(self.names)) for p in self.preds[v])
        return g


@dataclass(frozen=True)
class CostStats:
    """How the DAG was costed: by which backend, and how much came from the cache."""

    backend: str
    #: Layer costs computed by the backend (cache misses; remote: the service's calls).
    calls: int
    #: Layer costs served from the persistent cache.
    hits: int


@dataclass
class Problem:
    """Everything a policy plans on and the coordinator executes.

    Plain data: the network backends are recipes (:class:`NetworkRef`), built through
    the registry when a run needs one, so a problem can be pickled and sent to another
    process; a pickled-then-loaded problem gives the same results bit for bit.
    """

    name: str
    seed: int
    devices: list[DeviceSpec]
    dag: CompiledDag
    noc: Interconnect
    #: The backend of the real run.
    network: NetworkRef
    #: The surrogate backend planners simulate (its own channel realisation).
    planning_network: NetworkRef
    #: Per device: mean full-band rate (bit/s) used by planners as an estimate.
    mean_rate_bps: np.ndarray
    #: Per device, per chunk: earliest possible arrival time (a bound, for lower bounds).
    earliest_arrival_s: list[list[float]]
    #: Time to push every bit at an upper bound of the sum rate.
    radio_bound_s: float
    #: How the layers were costed.
    cost: CostStats
    #: Radio resources shared per slot (RBs of the OFDM model).
    radio_units: int = 1
    accelerator: str = ""
    #: The chip's kinds of core; empty: one kind, every core (hand-built problems).
    core_types: tuple[CoreTypeInfo, ...] = ()
    #: The chip's DRAM bandwidth (bytes/s), shared by contention.
    dram_bandwidth_Bps: float = math.inf

    @property
    def chip_types(self) -> tuple[CoreTypeInfo, ...]:
        """:attr:`core_types`, or the one kind of a hand-built problem."""
        if self.core_types:
            return self.core_types
        cores = tuple(range(self.num_cores))
        return (CoreTypeInfo("core", len(cores), None, cores, "DRAM", math.inf, math.inf),)

    def core_type_of(self, core: int) -> int:
        """Index in :attr:`chip_types` of the type of ``core``."""
        for t, info in enumerate(self.chip_types):
            if core in info.cores:
                return t
        raise ValueError(f"core {core} out of range 0..{self.num_cores - 1}")

    @property
    def network_backend(self) -> str:
        """The name of the real run's network backend."""
        return self.network.backend

    @property
    def cost_backend(self) -> str:
        """The name of the cost backend the DAG was costed with."""
        return self.cost.backend

    def make_network(self) -> NetworkBackend:
        """A fresh network backend for the real run."""
        return self.network.create()

    def make_planning_network(self) -> NetworkBackend:
        """A fresh surrogate backend for planning."""
        return self.planning_network.create()

    @property
    def num_cores(self) -> int:
        return self.noc.num_cores

    def device_index(self, name: str) -> int:
        """Index of the device called ``name``."""
        for i, d in enumerate(self.devices):
            if d.name == name:
                return i
        raise KeyError(name)

    def encoder_layers(self, device: int) -> list[int]:
        """Layers whose group is the encoder of ``device``."""
        tag = f"encoder:{self.devices[device].name}"
        return [v for v, g in enumerate(self.dag.groups) if g == tag]
