"""The admission guards: which matched CABs an alert may run, decided once, before anything runs."""
