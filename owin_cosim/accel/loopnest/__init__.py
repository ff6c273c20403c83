"""The loop-nest model of one core: nest analysis with Timeloop's counting rules, the
seeded mapping search, and the ``loopnest`` cost backend.
"""
