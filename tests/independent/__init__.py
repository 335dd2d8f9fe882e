"""Checkers written apart from badge_engine, so tests compare two implementations."""
