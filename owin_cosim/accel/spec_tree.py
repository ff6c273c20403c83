"""The architecture tree of an accelerator spec file, read level by level: the system
(holding the DRAM) -> ONE core (holding the global buffer) -> the PE array
``PE[lo..hi]`` (a scratchpad and a compute unit per PE).

:func:`read_core_tree` checks the structure in file order and raises a
:class:`~owin_cosim.errors.ConfigError` naming the first offending key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owin_cosim.accel.spec_schema import (
    BUFFER_CLASSES,
    COMPUTE_CLASSES,
    DRAM_CLASSES,
    PE_RANGE,
    _Architecture,
    _BufferAttrs,
    _Component,
    _DramAttrs,
    _MacAttrs,
    _Node,
    validate_attributes,
)
from owin_cosim.errors import ConfigError

__all__ = ["CoreTree", "Part", "read_core_tree"]


@dataclass(frozen=True)
class Part:
    """A component of the architecture tree with its validated attributes."""

    comp: _Component
    #: Dotted key path of the component (``architecture.subtree[0].local[0]``, or
    #: ``core_types[1].architecture...`` in a heterogeneous spec).
    key: str
    attrs: Any  # _DramAttrs, _BufferAttrs or _MacAttrs
    #: Words moved by one access (storage only).
    block: int = 1


@dataclass(frozen=True)
class CoreTree:
    """The components of one core, found and checked."""

    #: Component name -> dotted key path, for every component of the tree.
    names: dict[str, str]
    dram: Part
    global_buffer: Part
    pe_buffer: Part
    mac: Part
    num_pes: int
    #: Width of the PE mesh (``meshX``); a divisor of ``num_pes``.
    pe_mesh_x: int


def read_core_tree(
    arch: _Architecture, word_bits: int, path: Path | None, prefix: str = ""
) -> CoreTree:
    """Find the DRAM, global buffer, scratchpad and compute unit; check the structure,
    the attributes and the word sizes (``word_bits``: the chip's).

    ``prefix`` goes before every key path: ``""`` for the ``architecture`` of a
    homogeneous spec, ``"core_types[1]."`` for one of a heterogeneous spec's core types.
    """
    names = _component_names(arch, path, prefix)
    system, skey = _single_node(
        arch.subtree,
        f"{prefix}architecture.subtree",
        "one top-level node (the system holding the DRAM)",
        path,
    )
    dram = _dram_part(system, skey, word_bits, path)
    core, ckey = _single_node(system.subtree, f"{skey}.subtree", "one node (the core)", path)
    glb = _global_buffer_part(core, ckey, word_bits, path)
    pe, pkey = _single_node(
        core.subtree, f"{ckey}.subtree", "one node (the PE array, e.g. PE[0..255])", path
    )
    num_pes = _pe_count(pe, pkey, path)
    spad, mac = _pe_parts(pe, pkey, word_bits, path)
    mesh_x = _pe_mesh_x(num_pes, pkey, (spad, mac), path)
    return CoreTree(names, dram, glb, spad, mac, num_pes, mesh_x)


def _component_names(arch: _Architecture, path: Path | None, prefix: str) -> dict[str, str]:
    """Component name -> key path, checking that every class is known and every name
    unique."""
    names: dict[str, str] = {}
    known = DRAM_CLASSES | BUFFER_CLASSES | COMPUTE_CLASSES

    def visit(node: _Node, key: str) -> None:
        for i, comp in enumerate(node.local):
            ckey = f"{key}.local[{i}]"
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
        visit(node, f"{prefix}architecture.subtree[{j}]")
    return names


def _single_node(
    nodes: Sequence[_Node], key: str, what: str, path: Path | None
) -> tuple[_Node, str]:
    """The one node of a level and its key path."""
    if len(nodes) != 1:
        raise ConfigError(path, key, f"expected exactly {what}, got {len(nodes)}")
    return nodes[0], f"{key}[0]"


def _dram_part(system: _Node, skey: str, word_bits: int, path: Path | None) -> Part:
    """The DRAM, the system level's only component."""
    comp = _only(system, skey, DRAM_CLASSES, "one DRAM component", path)
    key = f"{skey}.local[0]"
    attrs: _DramAttrs = validate_attributes(_DramAttrs, comp.attributes, path, key)
    _check_word_bits(attrs.word_bits, word_bits, path, key)
    block = _block_words(attrs.width, attrs.block_size, word_bits, path, key, "width")
    return Part(comp, key, attrs, block)


def _global_buffer_part(core: _Node, ckey: str, word_bits: int, path: Path | None) -> Part:
    """The global buffer, the core level's only component (ONE core: no instance range)."""
    if PE_RANGE.match(core.name):
        raise ConfigError(
            path,
            f"{ckey}.name",
            "the architecture describes ONE core: set chip.cores instead of an "
            f"instance range, got {core.name!r}",
        )
    comp = _only(core, ckey, BUFFER_CLASSES, "one global-buffer component", path)
    key = f"{ckey}.local[0]"
    attrs: _BufferAttrs = validate_attributes(_BufferAttrs, comp.attributes, path, key)
    if attrs.meshX is not None:
        raise ConfigError(
            path, f"{key}.attributes.meshX", "meshX applies to PE-level components only"
        )
    _check_word_bits(attrs.word_bits, word_bits, path, key)
    block = _block_words(attrs.memory_width, attrs.block_size, word_bits, path, key, "memory_width")
    return Part(comp, key, attrs, block)


def _pe_count(pe: _Node, pkey: str, path: Path | None) -> int:
    """PEs in the array: the size of the name's instance range ``PE[lo..hi]`` (else 1)."""
    match = PE_RANGE.match(pe.name)
    if match is None and "[" in pe.name:
        raise ConfigError(
            path,
            f"{pkey}.name",
            f"expected an instance range NAME[lo..hi] such as PE[0..255], got {pe.name!r}",
        )
    if match is None:
        return 1
    lo, hi = int(match["lo"]), int(match["hi"])
    if hi < lo:
        raise ConfigError(
            path,
            f"{pkey}.name",
            f"expected an instance range NAME[lo..hi] with lo <= hi, got {pe.name!r}",
        )
    return hi - lo + 1


def _pe_parts(pe: _Node, pkey: str, word_bits: int, path: Path | None) -> tuple[Part, Part]:
    """The PE's scratchpad and compute unit, its only components."""
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
    spad_attrs: _BufferAttrs = validate_attributes(
        _BufferAttrs, spad_comp.attributes, path, spad_key
    )
    _check_word_bits(spad_attrs.word_bits, word_bits, path, spad_key)
    spad_block = _block_words(
        spad_attrs.memory_width, spad_attrs.block_size, word_bits, path, spad_key, "memory_width"
    )
    mac_attrs: _MacAttrs = validate_attributes(_MacAttrs, mac_comp.attributes, path, mac_key)
    if mac_attrs.datawidth != word_bits:
        raise ConfigError(
            path,
            f"{mac_key}.attributes.datawidth",
            f"expected chip.word_bits ({word_bits}), got {mac_attrs.datawidth}",
        )
    return Part(spad_comp, spad_key, spad_attrs, spad_block), Part(mac_comp, mac_key, mac_attrs)


def _pe_mesh_x(num_pes: int, pkey: str, parts: Sequence[Part], path: Path | None) -> int:
    """Width of the PE mesh: the parts' common ``meshX`` (default: one row of all PEs)."""
    mesh_x = num_pes
    mesh_key = ""
    for part in parts:
        k, attrs = part.key, part.attrs
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
    return int(mesh_x)


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
