"""One router per StackStorm resource. The application includes every module here: each has a
``router``, and optionally ``LISTENER`` (``api``, ``auth`` or ``stream``; default ``api``) and
``PREFIX`` (default ``/v1``)."""
