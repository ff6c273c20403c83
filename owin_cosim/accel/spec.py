"""Multi-core accelerator specifications: a Timeloop v0.3 core plus chip-level blocks.

A spec file (see ``accel_specs/README.md``) has three top-level blocks:

``chip``
    Core count, clock, word size, the 2-D mesh network-on-chip between cores and the
    DRAM shared by the chip.
``architecture``
    ONE core in Timeloop's v0.3 architecture format: ``system`` (holding the ``DRAM``)
    -> the core (holding the global buffer) -> ``PE[0..N-1]`` (holding a per-PE
    scratchpad and the MAC unit). ``PE[lo..hi]`` gives the PE count and ``meshX`` its
    width. Every core of the chip is a copy of this one.
``energy_pJ``
    Energy per action in pJ, like an Accelergy ERT summary: component name ->
    ``{read, write}`` for storage (one action moves one block of ``block-size`` words)
    or ``{mac}`` for the compute unit.

:func:`load_chip_spec` validates the whole file up front (types, ranges, unknown keys,
structure, energies) and raises :class:`~owin_cosim.errors.ConfigError` naming the
dotted key path of the first offending key. The result is a frozen :class:`ChipSpec`
whose storage levels are expressed per word: sizes in words, bandwidths in words per
cycle, energies in pJ per word access.

Examples
--------
>>> from pathlib import Path
>>> from owin_cosim.accel import spec as accel_spec
>>> chip = load_chip_spec(Path(accel_spec.__file__).parents[2] / "accel_specs" / "mc4.yaml")
>>> chip.num_cores, chip.core.num_pes, chip.core.global_buffer.size_words
(4, 256, 131072)
>>> chip.hops(0, 3), chip.noc_transfer_s(3200, 0, 0)
(2, 0.0)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from owin_cosim.errors import ConfigError

__all__ = [
    "BUFFER_CLASSES",
    "COMPUTE_CLASSES",
    "DRAM_CLASSES",
    "ChipSpec",
    "CoreSpec",
    "NocSpec",
    "StorageLevel",
    "load_chip_spec",
    "parse_chip_spec",
]

#: Component classes accepted for the off-chip memory (``system`` level).
DRAM_CLASSES = frozenset({"DRAM"})
#: Component classes accepted for the global buffer and the per-PE scratchpad.
BUFFER_CLASSES = frozenset({"SRAM", "smartbuffer_SRAM", "regfile", "smartbuffer_RF"})
#: Component classes accepted for the PE's compute unit.
COMPUTE_CLASSES = frozenset({"intmac", "fpmac"})

_PE_RANGE = re.compile(r"^(?P<base>[A-Za-z_][\w-]*)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")


# ---- the validated, per-word result --------------------------------------------------
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
        core's static share of the chip's DRAM bandwidth, shared by reads and writes.
    read_energy_pJ, write_energy_pJ : float
        Energy per word read or written (the action energy over the block size).
    component_class : str
        Timeloop/Accelergy class (``DRAM``, ``smartbuffer_SRAM``, ...).
    key : str
        Dotted key path of the component in the spec file (for error messages).
    """

    name: str
    size_words: int | None
    instances: int
    read_bw_words_per_cycle: float
    write_bw_words_per_cycle: float
    read_energy_pJ: float
    write_energy_pJ: float
    component_class: str = ""
    key: str = ""


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
class ChipSpec:
    """A validated multi-core accelerator spec.

    Cores are numbered row-major on the ``mesh_x x mesh_y`` mesh: core ``k`` sits at
    ``(k % mesh_x, k // mesh_x)``.

    Examples
    --------
    >>> from pathlib import Path
    >>> from owin_cosim.accel import spec as accel_spec
    >>> d = Path(accel_spec.__file__).parents[2] / "accel_specs"
    >>> chip = load_chip_spec(d / "mc16.yaml")
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
    #: Total DRAM bandwidth of the chip (bytes/s), split equally between the cores.
    dram_bandwidth_Bps: float
    dram_energy_pJ_per_byte: float
    _hops: np.ndarray = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.num_cores != self.noc.mesh_x * self.noc.mesh_y:
            raise ValueError("num_cores must equal noc.mesh_x * noc.mesh_y")
        idx = np.arange(self.num_cores)
        x, y = idx % self.noc.mesh_x, idx // self.noc.mesh_x
        hops = np.abs(x[:, None] - x[None, :]) + np.abs(y[:, None] - y[None, :])
        hops = hops.astype(np.int64)
        hops.setflags(write=False)
        object.__setattr__(self, "_hops", hops)

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
    def dram_bandwidth_per_core_Bps(self) -> float:
        """Each core's static, equal share of the DRAM bandwidth (bytes/s)."""
        return self.dram_bandwidth_Bps / self.num_cores

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


# ---- the file schema (pydantic, strict, no unknown keys) -----------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _NocBlock(_Strict):
    topology: Literal["mesh2d"] = "mesh2d"
    mesh_x: int = Field(ge=1)
    mesh_y: int = Field(ge=1)
    link_bandwidth_bytes_per_cycle: float = Field(gt=0)
    hop_latency_cycles: float = Field(ge=0)
    energy_pJ_per_byte_hop: float = Field(ge=0)


class _DramBlock(_Strict):
    bandwidth_GBps: float = Field(gt=0)
    energy_pJ_per_byte: float | None = Field(default=None, ge=0)


class _ChipBlock(_Strict):
    name: str = Field(min_length=1)
    cores: int = Field(ge=1)
    clock_hz: float = Field(gt=0)
    word_bits: Literal[8, 16]
    noc: _NocBlock
    dram: _DramBlock


class _NodeAttributes(_Strict):
    technology: str | None = None


class _Component(_Strict):
    name: str = Field(min_length=1)
    class_: str = Field(alias="class", min_length=1)
    attributes: dict[str, Any] = Field(default_factory=dict)


class _Node(_Strict):
    name: str = Field(min_length=1)
    attributes: _NodeAttributes = Field(default_factory=_NodeAttributes)
    local: list[_Component] = Field(default_factory=list)
    subtree: list[_Node] = Field(default_factory=list)


class _Architecture(_Strict):
    version: float | str
    subtree: list[_Node]


class _EnergyEntry(_Strict):
    read: float | None = Field(default=None, ge=0)
    write: float | None = Field(default=None, ge=0)
    mac: float | None = Field(default=None, ge=0)


class _SpecFile(_Strict):
    description: str = ""
    chip: _ChipBlock
    architecture: _Architecture
    energy_pJ: dict[str, _EnergyEntry]


class _DramAttrs(_Strict):
    type: str = "DRAM"
    technology: str | None = None
    width: int = Field(gt=0)
    word_bits: int = Field(alias="word-bits", gt=0)
    block_size: int | None = Field(default=None, alias="block-size", gt=0)


class _BufferAttrs(_Strict):
    technology: str | None = None
    memory_depth: int = Field(gt=0)
    memory_width: int = Field(gt=0)
    word_bits: int = Field(alias="word-bits", gt=0)
    block_size: int | None = Field(default=None, alias="block-size", gt=0)
    read_bandwidth: float | None = Field(default=None, gt=0)
    write_bandwidth: float | None = Field(default=None, gt=0)
    n_banks: int = Field(default=1, gt=0)
    n_rdwr_ports: int | None = Field(default=None, gt=0)
    meshX: int | None = Field(default=None, gt=0)


class _MacAttrs(_Strict):
    technology: str | None = None
    datawidth: int = Field(gt=0)
    meshX: int | None = Field(default=None, gt=0)


# ---- error reporting -----------------------------------------------------------------
def _join(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def _config_error(err: ValidationError, path: Path | None, prefix: str = "") -> ConfigError:
    """The first error of a pydantic ValidationError as a ConfigError with its key path."""
    errors = err.errors()
    first = errors[0]
    key = _join(prefix, tuple(first["loc"]))
    kind = first["type"]
    value = first.get("input")
    if kind == "missing":
        message = "missing required key"
    elif kind == "extra_forbidden":
        message = "unknown key"
    else:
        text = str(first["msg"]).removeprefix("Input should be ")
        if text.startswith(("greater", "less")):
            text = "a value " + text
        message = f"expected {text}, got {value!r}"
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                pass
            else:
                message += (
                    " (a quoted or unsigned-exponent number such as 1.0e9 is text "
                    "in YAML: write 1.0e+9)"
                )
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error(s))"
    return ConfigError(path, key, message)


def _validate_attrs(
    model: type[_Strict], attrs: Mapping[str, Any], path: Path | None, key: str
) -> Any:
    try:
        return model.model_validate(dict(attrs))
    except ValidationError as e:
        raise _config_error(e, path, f"{key}.attributes") from None


# ---- loading -------------------------------------------------------------------------
def load_chip_spec(path: str | Path) -> ChipSpec:
    """Read, validate and convert an accelerator spec file.

    Parameters
    ----------
    path : str or Path
        A YAML spec (see ``accel_specs/README.md``).

    Returns
    -------
    ChipSpec

    Raises
    ------
    ConfigError
        Unreadable file, bad YAML, or any missing, unknown or invalid key, with the
        dotted key path of the offending key.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(p, "", f"cannot read the accelerator spec: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(p, "", f"invalid YAML: {e}") from None
    return parse_chip_spec(data, p)


def parse_chip_spec(data: Any, path: str | Path | None = None) -> ChipSpec:
    """Validate and convert an already-parsed spec mapping (``path`` only names it).

    Raises
    ------
    ConfigError
        As :func:`load_chip_spec`.
    """
    p = Path(path) if path is not None else None
    if not isinstance(data, Mapping):
        raise ConfigError(p, "", "expected a mapping with keys chip, architecture, energy_pJ")
    try:
        spec = _SpecFile.model_validate(dict(data))
    except ValidationError as e:
        raise _config_error(e, p) from None
    return _build(spec, p)


def _build(spec: _SpecFile, path: Path | None) -> ChipSpec:
    chip = spec.chip
    noc = chip.noc
    if chip.cores != noc.mesh_x * noc.mesh_y:
        raise ConfigError(
            path,
            "chip.noc.mesh_x",
            f"expected mesh_x * mesh_y == chip.cores ({chip.cores}), got "
            f"{noc.mesh_x} x {noc.mesh_y} = {noc.mesh_x * noc.mesh_y}",
        )
    arch = spec.architecture
    if str(arch.version) != "0.3":
        raise ConfigError(
            path,
            "architecture.version",
            f"expected 0.3 (Timeloop v0.3 format), got {arch.version!r}",
        )

    # Every component class must be known, every name unique.
    names: dict[str, str] = {}

    def visit(node: _Node, key: str) -> None:
        for i, comp in enumerate(node.local):
            ckey = f"{key}.local[{i}]"
            known = DRAM_CLASSES | BUFFER_CLASSES | COMPUTE_CLASSES
            if comp.class_ not in known:
                raise ConfigError(
                    path,
                    f"{ckey}.class",
                    f"unknown component class {comp.class_!r}; expected one of "
                    f"{', '.join(sorted(known))}",
                )
            if comp.name in names:
                raise ConfigError(
                    path,
                    f"{ckey}.name",
                    f"duplicate component name {comp.name!r} (also at {names[comp.name]})",
                )
            names[comp.name] = ckey
        for j, child in enumerate(node.subtree):
            visit(child, f"{key}.subtree[{j}]")

    for j, node in enumerate(arch.subtree):
        visit(node, f"architecture.subtree[{j}]")

    # system -> DRAM
    if len(arch.subtree) != 1:
        raise ConfigError(
            path,
            "architecture.subtree",
            f"expected exactly one top-level node (the system holding the DRAM), "
            f"got {len(arch.subtree)}",
        )
    system, skey = arch.subtree[0], "architecture.subtree[0]"
    dram_comp = _only(system, skey, DRAM_CLASSES, "one DRAM component", path)
    dram_key = f"{skey}.local[0]"
    dram_attrs: _DramAttrs = _validate_attrs(_DramAttrs, dram_comp.attributes, path, dram_key)
    _check_word_bits(dram_attrs.word_bits, chip.word_bits, path, dram_key)
    dram_block = _block_words(
        dram_attrs.width, dram_attrs.block_size, chip.word_bits, path, dram_key, "width"
    )

    # core -> global buffer
    if len(system.subtree) != 1:
        raise ConfigError(
            path,
            f"{skey}.subtree",
            f"expected exactly one node (the core), got {len(system.subtree)}",
        )
    core, ckey = system.subtree[0], f"{skey}.subtree[0]"
    if _PE_RANGE.match(core.name):
        raise ConfigError(
            path,
            f"{ckey}.name",
            "the architecture describes ONE core: set chip.cores instead of an "
            f"instance range, got {core.name!r}",
        )
    glb_comp = _only(core, ckey, BUFFER_CLASSES, "one global-buffer component", path)
    glb_key = f"{ckey}.local[0]"
    glb_attrs: _BufferAttrs = _validate_attrs(_BufferAttrs, glb_comp.attributes, path, glb_key)
    if glb_attrs.meshX is not None:
        raise ConfigError(
            path, f"{glb_key}.attributes.meshX", "meshX applies to PE-level components only"
        )
    _check_word_bits(glb_attrs.word_bits, chip.word_bits, path, glb_key)
    glb_block = _block_words(
        glb_attrs.memory_width, glb_attrs.block_size, chip.word_bits, path, glb_key, "memory_width"
    )

    # PE[lo..hi] -> scratchpad + MAC
    if len(core.subtree) != 1:
        raise ConfigError(
            path,
            f"{ckey}.subtree",
            f"expected exactly one node (the PE array, e.g. PE[0..255]), got {len(core.subtree)}",
        )
    pe, pkey = core.subtree[0], f"{ckey}.subtree[0]"
    match = _PE_RANGE.match(pe.name)
    if match is None and "[" in pe.name:
        raise ConfigError(
            path,
            f"{pkey}.name",
            f"expected an instance range NAME[lo..hi] such as PE[0..255], got {pe.name!r}",
        )
    if match is None:
        num_pes = 1
    else:
        lo, hi = int(match["lo"]), int(match["hi"])
        if hi < lo:
            raise ConfigError(
                path,
                f"{pkey}.name",
                f"expected an instance range NAME[lo..hi] with lo <= hi, got {pe.name!r}",
            )
        num_pes = hi - lo + 1
    if pe.subtree:
        raise ConfigError(path, f"{pkey}.subtree", "expected no further levels below the PE")
    storages = [(i, c) for i, c in enumerate(pe.local) if c.class_ in BUFFER_CLASSES]
    computes = [(i, c) for i, c in enumerate(pe.local) if c.class_ in COMPUTE_CLASSES]
    for i, c in enumerate(pe.local):
        if c.class_ in DRAM_CLASSES:
            raise ConfigError(path, f"{pkey}.local[{i}].class", "DRAM belongs to the system level")
    if len(storages) != 1 or len(computes) != 1:
        raise ConfigError(
            path,
            f"{pkey}.local",
            "expected exactly one scratchpad ("
            + ", ".join(sorted(BUFFER_CLASSES))
            + ") and one compute unit ("
            + ", ".join(sorted(COMPUTE_CLASSES))
            + f"), got {len(storages)} and {len(computes)}",
        )
    (si, spad_comp), (mi, mac_comp) = storages[0], computes[0]
    spad_key, mac_key = f"{pkey}.local[{si}]", f"{pkey}.local[{mi}]"
    spad_attrs: _BufferAttrs = _validate_attrs(_BufferAttrs, spad_comp.attributes, path, spad_key)
    _check_word_bits(spad_attrs.word_bits, chip.word_bits, path, spad_key)
    spad_block = _block_words(
        spad_attrs.memory_width,
        spad_attrs.block_size,
        chip.word_bits,
        path,
        spad_key,
        "memory_width",
    )
    mac_attrs: _MacAttrs = _validate_attrs(_MacAttrs, mac_comp.attributes, path, mac_key)
    if mac_attrs.datawidth != chip.word_bits:
        raise ConfigError(
            path,
            f"{mac_key}.attributes.datawidth",
            f"expected chip.word_bits ({chip.word_bits}), got {mac_attrs.datawidth}",
        )

    mesh_x = num_pes
    mesh_key = ""
    for k, attrs in ((spad_key, spad_attrs), (mac_key, mac_attrs)):
        if attrs.meshX is None:
            continue
        if mesh_key and attrs.meshX != mesh_x:
            raise ConfigError(
                path,
                f"{k}.attributes.meshX",
                f"expected the same meshX as {mesh_key} ({mesh_x}), got {attrs.meshX}",
            )
        mesh_x, mesh_key = attrs.meshX, f"{k}.attributes.meshX"
    if num_pes % mesh_x:
        raise ConfigError(
            path,
            mesh_key or f"{pkey}.name",
            f"expected a divisor of the PE count {num_pes}, got {mesh_x}",
        )

    # energies
    energies = spec.energy_pJ
    for ename in energies:
        if ename not in names:
            raise ConfigError(
                path,
                f"energy_pJ.{ename}",
                f"no component named {ename!r} in the architecture (components: "
                f"{', '.join(names)})",
            )
    wbytes = chip.word_bits // 8
    dram_entry = energies.get(dram_comp.name)
    if dram_entry is None and chip.dram.energy_pJ_per_byte is None:
        raise ConfigError(
            path,
            f"energy_pJ.{dram_comp.name}",
            "missing energies: give {read, write} in pJ per DRAM access here or "
            "chip.dram.energy_pJ_per_byte",
        )
    if dram_entry is not None:
        d_read, d_write = _storage_energy(dram_entry, dram_comp.name, path)
        d_read, d_write = d_read / dram_block, d_write / dram_block
        per_byte = chip.dram.energy_pJ_per_byte
        if per_byte is not None and not math.isclose(d_read / wbytes, per_byte, rel_tol=1e-6):
            raise ConfigError(
                path,
                "chip.dram.energy_pJ_per_byte",
                f"expected {d_read / wbytes:g} (energy_pJ.{dram_comp.name}.read "
                f"per byte), got {per_byte:g}",
            )
    else:
        assert chip.dram.energy_pJ_per_byte is not None
        d_read = d_write = chip.dram.energy_pJ_per_byte * wbytes
    dram_pJ_per_byte = (
        chip.dram.energy_pJ_per_byte
        if chip.dram.energy_pJ_per_byte is not None
        else d_read / wbytes
    )
    g_read, g_write = _storage_energy(energies.get(glb_comp.name), glb_comp.name, path)
    s_read, s_write = _storage_energy(energies.get(spad_comp.name), spad_comp.name, path)
    mac_entry = energies.get(mac_comp.name)
    if mac_entry is None:
        raise ConfigError(
            path, f"energy_pJ.{mac_comp.name}", "missing energies: expected {mac: pJ per MAC}"
        )
    if mac_entry.read is not None or mac_entry.write is not None:
        raise ConfigError(
            path,
            f"energy_pJ.{mac_comp.name}.{'read' if mac_entry.read is not None else 'write'}",
            "a compute unit has the action mac only",
        )
    if mac_entry.mac is None:
        raise ConfigError(path, f"energy_pJ.{mac_comp.name}.mac", "missing required key")

    per_core_dram_bps = chip.dram.bandwidth_GBps * 1e9 / chip.cores
    dram_wpc = per_core_dram_bps / chip.clock_hz / wbytes
    inf = math.inf
    levels = (
        StorageLevel(
            dram_comp.name, None, 1, dram_wpc, dram_wpc, d_read, d_write, dram_comp.class_, dram_key
        ),
        StorageLevel(
            glb_comp.name,
            glb_attrs.memory_depth * glb_attrs.memory_width // chip.word_bits,
            1,
            glb_attrs.read_bandwidth or inf,
            glb_attrs.write_bandwidth or inf,
            g_read / glb_block,
            g_write / glb_block,
            glb_comp.class_,
            glb_key,
        ),
        StorageLevel(
            spad_comp.name,
            spad_attrs.memory_depth * spad_attrs.memory_width // chip.word_bits,
            num_pes,
            spad_attrs.read_bandwidth or inf,
            spad_attrs.write_bandwidth or inf,
            s_read / spad_block,
            s_write / spad_block,
            spad_comp.class_,
            spad_key,
        ),
    )
    core_spec = CoreSpec(levels, mesh_x, num_pes // mesh_x, float(mac_entry.mac), mac_comp.name)
    return ChipSpec(
        name=chip.name,
        path=path,
        num_cores=chip.cores,
        clock_hz=chip.clock_hz,
        word_bits=chip.word_bits,
        core=core_spec,
        noc=NocSpec(
            noc.topology,
            noc.mesh_x,
            noc.mesh_y,
            noc.link_bandwidth_bytes_per_cycle,
            noc.hop_latency_cycles,
            noc.energy_pJ_per_byte_hop,
        ),
        dram_bandwidth_Bps=chip.dram.bandwidth_GBps * 1e9,
        dram_energy_pJ_per_byte=float(dram_pJ_per_byte),
    )


def _only(
    node: _Node, key: str, classes: frozenset[str], what: str, path: Path | None
) -> _Component:
    """The single component of ``node``, which must have a class in ``classes``."""
    if len(node.local) != 1:
        raise ConfigError(
            path,
            f"{key}.local",
            f"expected exactly {what} ({', '.join(sorted(classes))}), got "
            f"{len(node.local)} components",
        )
    comp = node.local[0]
    if comp.class_ not in classes:
        raise ConfigError(
            path,
            f"{key}.local[0].class",
            f"expected {what} ({', '.join(sorted(classes))}) at this level, got {comp.class_!r}",
        )
    return comp


def _check_word_bits(bits: int, chip_bits: int, path: Path | None, key: str) -> None:
    if bits != chip_bits:
        raise ConfigError(
            path,
            f"{key}.attributes.word-bits",
            f"expected chip.word_bits ({chip_bits}), got {bits}",
        )


def _block_words(
    width: int, block: int | None, bits: int, path: Path | None, key: str, width_name: str
) -> int:
    """Words moved by one access: ``width / word-bits`` (``block-size`` must agree)."""
    if width % bits:
        raise ConfigError(
            path,
            f"{key}.attributes.{width_name}",
            f"expected a multiple of word-bits ({bits}), got {width}",
        )
    words = width // bits
    if block is not None and block != words:
        raise ConfigError(
            path,
            f"{key}.attributes.block-size",
            f"expected {width_name} / word-bits = {words}, got {block}",
        )
    return words


def _storage_energy(
    entry: _EnergyEntry | None, name: str, path: Path | None
) -> tuple[float, float]:
    if entry is None:
        raise ConfigError(
            path, f"energy_pJ.{name}", "missing energies: expected {read, write} in pJ per access"
        )
    if entry.mac is not None:
        raise ConfigError(
            path, f"energy_pJ.{name}.mac", "a storage component has the actions read and write only"
        )
    for action in ("read", "write"):
        if getattr(entry, action) is None:
            raise ConfigError(path, f"energy_pJ.{name}.{action}", "missing required key")
    assert entry.read is not None and entry.write is not None
    return float(entry.read), float(entry.write)
