"""Checkers written apart from badge_engine, so tests can compare two implementations."""
