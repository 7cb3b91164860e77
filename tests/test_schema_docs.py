"""README's field tables are the schema's (deploys/schema/docs.py)."""

from pathlib import Path

from deploys.schema import ALL_FIELDS
from deploys.schema.docs import BEGIN, END, render

REPO = Path(__file__).resolve().parents[1]


def test_readme_field_tables_are_generated_from_the_schema():
    text = (REPO / "README.md").read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == render()
    for name in ALL_FIELDS:
        assert f"| `{name}` |" in text[start:end]
