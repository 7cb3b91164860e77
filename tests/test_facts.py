"""Facts on real-format command output: pyinfra-testing fixtures in tests/facts/<module>.<Fact>/."""

from pathlib import Path

from pyinfra_testing.facts import make_fact_tests

FIXTURES = Path(__file__).parent / "facts"

for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
    test_class = make_fact_tests("facts", folder.name, folder)
    globals()[test_class.__name__ + "_" + folder.name.replace(".", "_")] = test_class
del test_class, folder
