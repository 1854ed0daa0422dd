"""The ``announcement`` runner: an action that posts its parameters to the event stream."""
