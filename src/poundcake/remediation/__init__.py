"""PoundCake proper: Alertmanager intake, alert episodes, CABs and the request trail.

An alert goes through these stages, each a module, in this order (the process that runs each,
and the engine's part in between, are in ``docs/architecture.md``):

1. :mod:`~poundcake.remediation.intake.service`: store the call, the episodes and the deliveries;
2. :mod:`~poundcake.remediation.tasks.enqueue` (and :mod:`~poundcake.remediation.tasks.relay` for
   what a queue lost): hand the deliveries to the workers;
3. :mod:`~poundcake.remediation.dispatch`: send each new episode to the engine once, or close it;
4. :mod:`~poundcake.remediation.tracking.stream`: hear from the engine that an execution moved;
5. :mod:`~poundcake.remediation.tracking.observe`: read what the engine did;
6. :mod:`~poundcake.remediation.tracking.service`: record it and move the episode on;
7. :mod:`~poundcake.remediation.tracking.trail`: read the whole trail of a request back.

Stages hand work on through the database and the task queue, never by importing each other (an
import contract keeps ``intake.service``, ``dispatch`` and ``tracking`` apart). The engine is
used through :mod:`poundcake.engine.public` and its HTTP API (:mod:`.engine_api`).
"""
