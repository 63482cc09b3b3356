"""Real engines the tests run against, one pytest plugin each (listed in tests/conftest.py)."""
