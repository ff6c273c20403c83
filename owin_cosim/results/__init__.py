"""Results: the records of a run, its summary, and the writers (CSV, JSON, Chrome trace,
Gantt chart, comparison).
"""
