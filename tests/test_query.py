"""The query grammar, in Python and in the pages' JavaScript: one table of cases for both."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cdp import Browser, chromium_path

from mitosis.core.query import parse_query
from mitosis.errors import QueryError

CASES = json.loads((Path(__file__).parent / "query_cases.json").read_text())
QUERY_JS = Path(__file__).parent.parent / "mitosis" / "html" / "query.js"


def _matching(query: str) -> list[str]:
    parsed = parse_query(query)
    return [row["id"] for row in CASES["rows"] if parsed.matches(row.get)]


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda case: case["query"])
def test_python_selects_the_expected_trials(case: dict[str, Any]) -> None:
    assert _matching(case["query"]) == case["ids"]


@pytest.mark.parametrize("case", CASES["errors"], ids=lambda case: case["query"])
def test_python_refuses_a_bad_query_pointing_at_the_character(case: dict[str, Any]) -> None:
    with pytest.raises(QueryError) as refused:
        parse_query(case["query"])
    message = refused.value.message
    assert f"at character {case['position']} " in message
    assert message.endswith(".") and "\n" not in message


def test_an_empty_query_is_refused() -> None:
    with pytest.raises(QueryError, match="empty"):
        parse_query("   ")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium_path()
    page = Browser(tmp_path_factory.mktemp("chromium-profile"))
    page.navigate("about:blank")
    page.evaluate(QUERY_JS.read_text() + ";window.MitosisQuery = MitosisQuery; true")
    yield page
    page.close()


def test_the_page_selects_the_same_trials(browser: Browser) -> None:
    found = browser.evaluate(
        f"""(() => {{
          const data = {json.dumps(CASES)};
          return data.cases.map(c => {{
            const tree = MitosisQuery.parse(c.query);
            return data.rows.filter(r => MitosisQuery.evaluate(tree, k => r[k])).map(r => r.id);
          }});
        }})()"""
    )
    assert found == [case["ids"] for case in CASES["cases"]]


def test_the_page_refuses_the_same_queries_at_the_same_characters(browser: Browser) -> None:
    positions = browser.evaluate(
        f"""(() => {{
          const data = {json.dumps(CASES)};
          return data.errors.map(c => {{
            try {{ MitosisQuery.parse(c.query); return null; }}
            catch (e) {{
              return e instanceof MitosisQuery.QueryError ? e.position + 1 : String(e);
            }}
          }});
        }})()"""
    )
    assert positions == [case["position"] for case in CASES["errors"]]


def test_neither_evaluates_code() -> None:
    source = QUERY_JS.read_text()
    assert not re.search(r"\beval\s*\(|\bFunction\s*\(|new\s+Function", source)
    python = (Path(__file__).parent.parent / "mitosis" / "core" / "query.py").read_text()
    assert not re.search(r"(?<![\w.])(eval|exec|compile)\(", python)
