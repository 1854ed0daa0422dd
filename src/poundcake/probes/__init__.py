"""Probes of the database and the broker, below both APIs and the status commands: readiness
(:mod:`.health`) and how much work waits in a broker's queues (:mod:`.queues`)."""
