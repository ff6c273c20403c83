"""``owin-cosim estimate``: one layer's cost on one core, from Timeloop-format inputs.

``--arch`` is either a multi-core spec of ``accel_specs/`` (its core is costed by the
analytic model) or a Timeloop architecture (``arch.yaml`` with its ``components/``
folder beside it). With a Timeloop architecture, the analytic backend evaluates the
given ``--mapping`` with the loop-nest model (:mod:`owin_cosim.loopnest`), with energies
from the Accelergy ERT (``--ert``, or ``../accelergy/ERT.yaml`` beside the inputs).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from owin_cosim.errors import ConfigError
from owin_cosim.timeloop_io import layer_from_problem, load_yaml_any, read_problem

__all__ = ["estimate_layer"]


def _find_ert(arch: Path, ert: Path | None) -> Path:
    if ert is not None:
        return ert
    for cand in (arch.parent.parent / "accelergy" / "ERT.yaml", arch.parent / "ERT.yaml"):
        if cand.is_file():
            return cand
    raise ConfigError(
        arch, "", "no Accelergy ERT found beside the architecture; expected --ert ERT.yaml"
    )


def estimate_layer(
    arch: Path,
    problem: Path,
    *,
    mapping: Path | None = None,
    ert: Path | None = None,
    backend: str = "analytic",
) -> dict[str, Any]:
    """The JSON-ready cost of the layer of ``problem`` on ``arch`` (see the module doc)."""
    layer = layer_from_problem(read_problem(problem), name=problem.stem)
    doc = load_yaml_any(arch)
    if isinstance(doc, dict) and "chip" in doc:
        if mapping is not None:
            raise ConfigError(
                mapping,
                "",
                "a mapping applies to a Timeloop architecture, not "
                "to a multi-core spec; expected --arch ARCH.yaml of Timeloop",
            )
        if backend == "timeloop":
            raise ConfigError(
                arch,
                "",
                "the timeloop backend needs a Timeloop architecture; "
                "expected --arch ARCH.yaml with its components folder",
            )
        from owin_cosim.accel_spec import load_chip_spec
        from owin_cosim.analytic_model import AnalyticCostModel

        cost = AnalyticCostModel(load_chip_spec(arch)).layer_cost(layer)
        return _result(asdict(cost), "analytic model, searched tiling", backend)
    if backend == "timeloop":
        from owin_cosim.timeloop_backend import TimeloopCostModel

        components = sorted((arch.parent / "components").glob("*.yaml"))
        model = TimeloopCostModel([arch, *components])
        return _result(asdict(model.layer_cost(layer)), "timeloop-mapper", backend)
    if mapping is None:
        raise ConfigError(
            None,
            "--mapping",
            "the analytic model evaluates a given mapping on a "
            "Timeloop architecture; expected --mapping MAP.yaml (or a "
            "multi-core spec from accel_specs/ as --arch)",
        )
    from owin_cosim.loopnest import evaluate_files

    return _result(
        evaluate_files(arch, problem, mapping, _find_ert(arch, ert)),
        "loop-nest model, given mapping",
        backend,
    )


def _result(cost: dict[str, Any], mode: str, backend: str) -> dict[str, Any]:
    levels = {
        name: {k: lvl[k] for k in ("reads", "writes", "fills", "energy_pJ")}
        for name, lvl in cost.get("levels", {}).items()
    }
    return {
        "cycles": int(cost["cycles"]),
        "energy_pJ": float(cost["energy_pJ"]),
        "utilization": float(cost["utilization"]),
        "levels": levels,
        "mode": mode,
        "backend": backend,
    }
