"""Measurements: reading rows, mapping them to predictions, error metrics and calibration."""
