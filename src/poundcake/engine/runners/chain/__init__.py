"""The ``action-chain`` runner: StackStorm's ActionChain workflows, one child execution per task."""
