"""StackStorm's ``st2reactor`` package as sensors import it, written for PoundCake."""
