"""The test suite (its shared pieces are in helpers.py and conftest.py)."""
