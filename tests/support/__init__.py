"""Helpers imported by tests: the stack, users, images, uploads, servers, faults.

Fixtures built on them live in the conftest files; see tests/README.md.
"""
