"""Thin adapters from a potential to simulation engines (ASE, OpenMM)."""
