"""Helpers shared by the test layers: real processes, raw servers, calls, strategies.

Fixtures live in tests/conftest.py; test modules import helpers only from here.
"""
