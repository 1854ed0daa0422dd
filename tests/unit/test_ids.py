from __future__ import annotations

import time

from poundcake.ids import id_timestamp, is_valid_id, new_id


def test_ids_are_24_lowercase_hex() -> None:
    value = new_id()
    assert len(value) == 24
    assert is_valid_id(value)
    assert not is_valid_id(value.upper())
    assert not is_valid_id(value[:-1])


def test_ids_sort_by_time_and_within_a_second_by_creation() -> None:
    earlier = new_id(at=time.time() - 10)
    batch = [new_id() for _ in range(1000)]
    assert earlier < batch[0]
    assert len(set(batch)) == 1000
    assert abs(id_timestamp(batch[0]).timestamp() - time.time()) < 5
