"""Operations as given facts -> exact commands (pyinfra-testing fixtures in
tests/operations/<module>.<operation>/), the no-op cases included."""

from pathlib import Path

import pytest
from pyinfra_testing.operations import make_operation_tests

FIXTURES = Path(__file__).parent / "operations"


@pytest.fixture(autouse=True)
def _fixed_apply_token(monkeypatch):
    """uci.converge names every apply with a new random token; the fixtures pin this one."""
    monkeypatch.setattr("operations.uci.new_token", lambda: "0123456789abcdef")

for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
    test_class = make_operation_tests("operations", folder.name, folder)
    globals()[test_class.__name__ + "_" + folder.name.replace(".", "_")] = test_class
del test_class, folder
