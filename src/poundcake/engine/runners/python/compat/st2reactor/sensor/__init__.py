"""StackStorm's ``st2reactor.sensor`` package: the sensor base classes."""
