"""shoal's pure core: no I/O, no clock, no randomness of its own.

Everything here takes values (bytes, ``now``, a seeded ``random.Random``)
and returns decisions or data. Nothing here imports shoal outside ``core``.
"""
