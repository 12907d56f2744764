"""The package face: a sorted, importable __all__."""

import assistant


def test_all_is_sorted_and_every_name_exists() -> None:
    assert assistant.__all__ == sorted(assistant.__all__)
    for name in assistant.__all__:
        assert hasattr(assistant, name), name


def test_importing_a_base_module_loads_it_alone() -> None:
    """`import assistant.text` (jieba's one home) must not drag in the answer path and langchain."""
    import subprocess
    import sys

    code = ("import sys, assistant.text; "
            "print(sorted(m for m in sys.modules if m.startswith('assistant')), 'langchain_core' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['assistant', 'assistant.text'] False"
