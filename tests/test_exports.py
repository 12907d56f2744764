"""The package face: a sorted, importable __all__."""

import assistant


def test_all_is_sorted_and_every_name_exists() -> None:
    assert assistant.__all__ == sorted(assistant.__all__)
    for name in assistant.__all__:
        assert hasattr(assistant, name), name
