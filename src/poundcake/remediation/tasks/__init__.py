"""PoundCake's Celery workers: the only place that imports Celery.

``app`` builds the Celery app (broker, at-least-once settings, the tasks, the beat schedule);
``enqueue`` is what the API calls after a commit; ``deliveries``, ``relay`` and ``follow`` are the
tasks, each a thin edge around a service function. Nothing is created on import.
"""
