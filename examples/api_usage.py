"""A what-if loop through the library API: how does PACS's gain over RTFS change as the
accelerator gets slower (latency scale) and the band narrower (resource blocks)?

Run: ``python examples/api_usage.py`` (a few seconds; the tests run it too).
"""

from __future__ import annotations

from pathlib import Path

from owin_cosim import api

HERE = Path(__file__).resolve().parent


def main() -> list[tuple[float, int, float, float]]:
    base = api.load_scenario(HERE / "quickstart.yaml")
    rows = []
    for scale in (0.5, 1.0, 2.0):
        for rbs in (25, 50):
            what_if = api.override(
                base, {"accelerator.latency_scale": scale, "network.ofdm.num_rbs": rbs}
            )
            results = api.compare(what_if, ["rtfs", "pacs"])
            rtfs, pacs = results["rtfs"].makespan_s, results["pacs"].makespan_s
            rows.append((scale, rbs, rtfs, pacs))
            print(
                f"latency x{scale:<4} {rbs:>3} RBs: RTFS {rtfs * 1e3:7.2f} ms, "
                f"PACS {pacs * 1e3:7.2f} ms, PACS gain {(1 - pacs / rtfs) * 100:5.1f} %"
            )
    return rows


if __name__ == "__main__":
    main()
