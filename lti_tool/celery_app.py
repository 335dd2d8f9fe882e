"""The Celery application the worker and scheduler commands load.

Tasks run inside the Flask app context, take only ids, and are safe to run twice: the
outbox row they act on is claimed atomically, so a duplicate delivery of a task message
finds nothing to do.
"""

from __future__ import annotations

import structlog
from celery import Celery, Task
from celery.signals import task_postrun, task_prerun
from flask import Flask

from lti_tool.embedded_broker import register as register_embedded_broker

# How often each Moodle and Canvas connection is polled for completions that no
# event reported.
LMS_POLL_SECONDS = 15 * 60


def _broker_url(url: str) -> str:
    # The embedded default is spelled sqla+sqlite in configuration (kombu's own name);
    # it runs on the tuned transport in lti_tool.embedded_broker.
    if url.startswith("sqla+sqlite"):
        return "hpass-sqlite+" + url[len("sqla+") :]
    return url


def _bind_task_ids(task_id=None, task=None, **_kwargs) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task=task.name)


def _unbind_task_ids(**_kwargs) -> None:
    structlog.contextvars.clear_contextvars()


task_prerun.connect(_bind_task_ids, weak=False)
task_postrun.connect(_unbind_task_ids, weak=False)


def make_celery(app: Flask) -> Celery:
    register_embedded_broker()
    settings = app.extensions["hpass"].settings

    class AppContextTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=AppContextTask)
    transport_options = {}
    if settings.uses_embedded_broker:
        transport_options["polling_interval"] = 0.1
    celery.conf.update(
        broker_url=_broker_url(settings.broker_url),
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_schedule={
            "sweep-outbox": {
                "task": "lti_tool.tasks.sweep_outbox",
                "schedule": settings.outbox_sweep_seconds,
            },
            "poll-moodle-connections": {
                "task": "lti_tool.tasks.poll_moodle_connections",
                "schedule": LMS_POLL_SECONDS,
            },
            "poll-canvas-connections": {
                "task": "lti_tool.canvas_tasks.poll_canvas_connections",
                "schedule": LMS_POLL_SECONDS,
            },
            "poll-ags-courses": {
                "task": "lti_tool.ags_tasks.poll_ags_courses",
                "schedule": LMS_POLL_SECONDS,
            },
            "queue-expiry-reminders": {
                "task": "lti_tool.renewal_tasks.queue_all_expiry_reminders",
                "schedule": 3600,
            },
        },
    )
    celery.set_default()
    app.extensions["celery"] = celery
    import lti_tool.account_mail  # noqa: F401 - registers the tasks on this app
    import lti_tool.ags_tasks  # noqa: F401
    import lti_tool.canvas_tasks  # noqa: F401
    import lti_tool.renewal_tasks  # noqa: F401
    import lti_tool.tasks  # noqa: F401

    return celery


def celery_for(app: Flask) -> Celery:
    celery = app.extensions.get("celery")
    if celery is None:
        celery = make_celery(app)
    return celery
