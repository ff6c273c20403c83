"""Simulation: the event engine, the coordinator that carries a plan out against a network
backend and the chip, and the :class:`Evaluator` that planners use as their makespan
oracle.
"""
