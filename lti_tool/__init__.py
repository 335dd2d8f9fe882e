"""The deployable HPass bridge: LTI 1.3 tool, webhooks, pages, CLI and Celery app."""

__version__ = "0.1.0"
