"""Interval, date and cron timers: when each timer trigger fires next, shared through the DB."""
