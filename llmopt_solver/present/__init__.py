"""Presenters: text, JSON and pictures of results; no decisions are made here."""
