"""Helpers every tier shares (importable as ``helpers.*``: pytest puts ``tests/`` on the path for
its root conftest): the API-emulator fixtures' pieces, one polling helper, the isolation from
real clusters."""
