"""The bounds on one cost query's work, in one place (the estimator service reads them).

A query to the estimator service (:mod:`owin_cosim.accel.service`) names a batch of
layers and a backend's options; these caps refuse what one query may not ask, so one
client cannot hold the service's workers for days. The scenario schema bounds the same
quantities for a scenario (``accelerator.mapper.evaluations`` is at most
:data:`MAX_MAPPER_EVALUATIONS` there too); a cap here is never tighter than the
scenario's, so a valid scenario is never refused by the service. The work a whole
scenario implies (slots x RBs x devices, layers, mapper evaluations) is bounded on the
scenario side, before any query is sent (:mod:`owin_cosim.scenario.limits`).

=============================  =========  ==============================================
constant                       value      what it bounds
=============================  =========  ==============================================
``MAX_LAYERS_PER_BATCH``       10,000     layers in one ``estimate`` (the client splits
                                          a longer list into several batches)
``MAX_MAPPER_EVALUATIONS``     1,000,000  ``options.mapper_evaluations`` of ``loopnest``
``MAX_LAYER_DIM``              2**31 - 1  every dimension of a layer (R, S, P, ... N)
``MAX_LATENCY_SCALE``          1e6        ``options.latency_scale`` (the schema's bound)
``MAX_MESSAGE_BYTES``          64 MiB     one frame (``zmq.MAXMSGSIZE``: larger ones
                                          drop the connection, not the service)
``DEFAULT_QUERY_DEADLINE_S``   300 s      one query's time (``--deadline-s``); past it the
                                          answer is an error and the work is abandoned
``DEFAULT_WORKERS``            4          queries answered at once (``--workers``)
=============================  =========  ==============================================
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_QUERY_DEADLINE_S",
    "DEFAULT_WORKERS",
    "MAX_LATENCY_SCALE",
    "MAX_LAYERS_PER_BATCH",
    "MAX_LAYER_DIM",
    "MAX_MAPPER_EVALUATIONS",
    "MAX_MESSAGE_BYTES",
]

#: Layers in one ``estimate`` query.
MAX_LAYERS_PER_BATCH = 10_000
#: ``loopnest``'s mapping-search evaluations per layer shape (the scenario schema's bound).
MAX_MAPPER_EVALUATIONS = 1_000_000
#: Largest value of one layer dimension.
MAX_LAYER_DIM = 2**31 - 1
#: Largest ``latency_scale`` (the scenario schema's ``accelerator.latency_scale`` bound).
MAX_LATENCY_SCALE = 1e6
#: Largest frame the service reads (``zmq.MAXMSGSIZE``).
MAX_MESSAGE_BYTES = 64 * 2**20
#: One query's default time bound, in seconds.
DEFAULT_QUERY_DEADLINE_S = 300.0
#: Queries answered concurrently by default.
DEFAULT_WORKERS = 4
