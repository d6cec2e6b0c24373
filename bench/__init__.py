"""Benchmarks of the hub against the peers installed on this machine.

Run `python -m bench` from the repository root; see bench/README.md. Not part of
the installed package and not part of the test run.
"""
