"""The ``zigzag`` cost backend: KU Leuven's ZigZag (``zigzag-dse``) prices each layer.

``translate.py`` turns the core of a chip spec into ZigZag's hardware and mapping
documents and a layer into its workload; ``runner.py`` runs ZigZag's own mapping search
in a child process inside a fresh temporary directory; ``parse.py`` reads latency,
energy and per-level accesses from its results; ``backend.py`` is the cost model.

ZigZag is an optional extra (``pip install ".[zigzag]"``): nothing here imports it
except the child process of ``runner.py``. May import what ``accel/`` may.
"""
