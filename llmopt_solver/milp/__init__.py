"""MILP builders (pulp) and the solve wrapper; they read plain coefficient arrays and never compute physics."""
