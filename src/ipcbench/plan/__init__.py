"""What to measure: cases (one cell of the matrix), presets (grids of cases) and the metric registry.

The bottom layer: it imports nothing of ipcbench but ``errors`` and ``units``.
"""
