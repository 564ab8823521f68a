"""Publish an executed notebook as ``trial.html``, with the trial's header above it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import nbformat

_HTML_DIR = Path(__file__).resolve().parent.parent / "html"


@lru_cache(maxsize=1)
def _header_template() -> jinja2.Template:
    # Our own environment with autoescape: every user string (variant names, notes,
    # error text) is escaped here, before nbconvert, which escapes nothing of ours.
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HTML_DIR)),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
    )
    return environment.get_template("trial_header.html.j2")


@lru_cache(maxsize=1)
def _exporter() -> Any:
    # Building an exporter loads and compiles nbconvert's templates; a sweep reuses one.
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="mitosis_trial", extra_template_basedirs=[str(_HTML_DIR)])


def render_header(record: dict[str, Any], has_log: bool) -> str:
    """The HTML header of a trial page: status, parameters, metrics, commit, links."""
    return _header_template().render(record=record, has_log=has_log)


def render_page(notebook: nbformat.NotebookNode, record: dict[str, Any], has_log: bool) -> str:
    """The whole ``trial.html``: header, then the executed notebook with its plots inline."""
    resources = {"mitosis_header": render_header(record, has_log)}
    body, _ = _exporter().from_notebook_node(notebook, resources=resources)
    return str(body)


def render_missing_notebook(record: dict[str, Any]) -> str:
    """A page for a trial whose notebook never came back (the kernel could not start)."""
    header = render_header(record, has_log=False)
    head = f"<head><meta charset='utf-8'><title>{record['id']}</title></head>"
    return f"<!DOCTYPE html>\n<html>{head}<body>{header}</body></html>\n"
