"""Studies: sweeps of many runs over a base scenario, resumable, on a pool or a cluster.

A sweep file (:mod:`~owin_cosim.study.sweep_file`, ``docs/sweep.md``) names a base
scenario, axes over scenario key paths (a grid, zipped axes, seeded random samples),
policies and seeds. :mod:`~owin_cosim.study.points` expands it into frozen, fully
resolved runs named by the hash of their content (chip-spec fields as axes:
:mod:`~owin_cosim.study.spec_fields`); :mod:`~owin_cosim.study.runner` carries out one run
into its own results directory; :mod:`~owin_cosim.study.executors` runs them on a local
process pool or a dask.distributed cluster; :mod:`~owin_cosim.study.store` is the sweep
directory (what is done, what is left); :mod:`~owin_cosim.study.table` writes
``results.parquet`` and ``results.csv``; :mod:`~owin_cosim.study.progress` draws the
progress bar; :mod:`~owin_cosim.study.sweep` ties them together (``owin-cosim sweep``).

May import everything below ``api.py`` (scenario, results, accel.spec), never ``cli``.
"""
