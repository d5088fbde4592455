"""Symbolic and numerical analysis shared by the derivation chapters.

Each submodule serves one or more chapters and is imported by its full name, e.g.
``from adamlab.analysis.update_bound import ...``.
"""
