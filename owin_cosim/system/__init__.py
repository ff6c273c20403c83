"""The compiled system: the :class:`Problem` (devices, costed DAG, NoC, uplink),
plans, and lower bounds on the makespan.
"""
