"""Timeloop's file formats (architectures, problems, mappings, ERTs, stats) and the
``timeloop`` cost backend that runs the real ``timeloop-mapper``.
"""
