"""Wrapper commands that generate hub4com command lines (hub4com's examples/*.bat)."""
