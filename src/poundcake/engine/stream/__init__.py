"""The event stream behind ``st2stream``: engine events fanned out to server-sent event clients.

``events`` says which events a client asked for and how a frame looks on the wire, ``documents``
turns rows into the bodies clients read, ``service`` reads them from the database, ``fanout``
consumes the broker and hands events to subscribers, and ``feed`` is one client's stream.
"""
