"""Network backends: the :class:`NetworkBackend` interface, the device record, the
backend registry, the analytic OFDM uplink and the ns-3 backend.

Imports nothing of the accelerator side.
"""
