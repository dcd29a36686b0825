"""Browser tests run against ``live_server``; they use ``flushable_db`` from ``tests/conftest.py``."""
