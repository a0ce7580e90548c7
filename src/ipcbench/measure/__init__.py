"""Measuring: mechanisms (declarations), patterns (drivers and peers), the round process, the runner,
progress and the machine's environment. Never imports pandas or matplotlib: every round starts a fresh
interpreter that imports this layer.
"""
