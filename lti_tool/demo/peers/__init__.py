"""Outside systems for the demo and the tests: an LTI platform, Moodle, a portfolio.

Each peer is a small Flask app with a `create_app()` factory and a `start()` method
that serves it on 127.0.0.1 in a background thread (see `serving.serve_in_thread`).
"""
