"""Chunks whose order does not matter: a symmetry cut for the radio half of the model.

Two chunks ``a < b`` of one device are *interchangeable* when they are of the same size
and swapping them, together with the layers that work on each of them alone (the
per-chunk copies ``name#a`` and ``name#b`` of a chunk-expanded layer), maps the problem
onto itself: the same options, output sizes, data needs, predecessors and successors
under the swap. Then any schedule that sends ``b`` before ``a`` has a mirror image, with
the same makespan, that sends ``a`` first; so the model may require ``a`` before ``b``
without losing an optimum. Per-chunk layers of equal chunks are built alike, so most
multi-chunk devices with equal chunks are covered and their order costs the search
nothing; the swap is checked in full, never assumed.
"""

from __future__ import annotations

from owin_cosim.system.problem import Problem

__all__ = ["fixed_order", "ordered_pairs"]


def _chunk_of(problem: Problem) -> list[set[tuple[int, int]]]:
    """Per layer: the chunk-specific data needs of it and its ancestors."""
    dag = problem.dag
    out: list[set[tuple[int, int]]] = [set() for _ in dag.names]
    for v in range(len(dag.names)):  # index order is topological
        need = dag.needs[v]
        if need is not None and need[1] >= 0:
            out[v].add(need)
        for p in dag.preds[v]:
            out[v] |= out[p]
    return out


def _swap(
    problem: Problem, owner: list[set[tuple[int, int]]], k: int, a: int, b: int
) -> list[int] | None:
    """The layer permutation that swaps chunk ``a``'s and ``b``'s own layers (by name;
    ``owner``: :func:`_chunk_of`), or ``None`` when they do not pair up."""
    dag = problem.dag
    index = {name: v for v, name in enumerate(dag.names)}
    perm = list(range(len(dag.names)))
    mine = {c: [v for v in perm if owner[v] == {(k, c)}] for c in (a, b)}
    if len(mine[a]) != len(mine[b]):
        return None
    for v in mine[a]:
        base, _, tail = dag.names[v].rpartition("#")
        w = index.get(f"{base}#{b}") if tail == str(a) else None
        if w is None or w not in mine[b]:
            return None
        perm[v], perm[w] = w, v
    return perm


def _is_automorphism(problem: Problem, k: int, a: int, b: int, perm: list[int]) -> bool:
    dag = problem.dag

    def moved(need: tuple[int, int] | None) -> tuple[int, int] | None:
        if need is None or need[0] != k or need[1] not in (a, b):
            return need
        return (k, b if need[1] == a else a)

    for v, w in enumerate(perm):
        if (
            dag.layer_options[v] != dag.layer_options[w]
            or dag.out_bytes[v] != dag.out_bytes[w]
            or moved(dag.needs[v]) != dag.needs[w]
            or sorted(perm[p] for p in dag.preds[v]) != sorted(dag.preds[w])
            or sorted(perm[s] for s in dag.succs[v]) != sorted(dag.succs[w])
        ):
            return False
    return True


def ordered_pairs(problem: Problem, k: int) -> list[tuple[int, int]]:
    """Pairs ``(a, b)`` of device ``k``'s chunks the model may send ``a`` first: each
    chunk with the next one interchangeable with it (see the module docstring)."""
    sizes = problem.devices[k].chunk_bytes
    out: list[tuple[int, int]] = []
    if len(sizes) == 1:
        return out
    owner = _chunk_of(problem)
    for a in range(len(sizes)):
        for b in range(a + 1, len(sizes)):
            if sizes[a] != sizes[b]:
                continue
            perm = _swap(problem, owner, k, a, b)
            if perm is not None and _is_automorphism(problem, k, a, b, perm):
                out.append((a, b))
                break  # the next interchangeable one; the chain orders the class
    return out


def fixed_order(pairs: list[tuple[int, int]], chunks: int) -> bool:
    """Whether :func:`ordered_pairs` fixes a device's whole order (``chunks`` of them):
    one chunk, or every chunk interchangeable with the next.

    >>> fixed_order([(0, 1), (1, 2)], 3), fixed_order([(1, 2)], 3), fixed_order([], 1)
    (True, False, True)
    """
    return pairs == [(c, c + 1) for c in range(chunks - 1)]
