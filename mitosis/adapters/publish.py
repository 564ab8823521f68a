"""Publish an executed notebook as ``trial.html``, with the trial's header above it.

nbconvert's lab template inlines about 270 KB of CSS into every page. Pages here link
to one shared copy in the trials folder's ``_assets/`` instead (a relative link, so a
copied trials folder still browses), which keeps a trial folder small.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import nbformat

from mitosis.atomic import write_atomic

ASSETS_DIR = "_assets"
_HTML_DIR = Path(__file__).resolve().parent.parent / "html"
_local = threading.local()


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


def _asset_name(template_name: str) -> str:
    return template_name.replace("/", "-")


def _make_exporter() -> Any:
    from nbconvert import HTMLExporter

    class SharedCssExporter(HTMLExporter):
        """The lab exporter, linking its stylesheets instead of inlining them."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)  # type: ignore[no-untyped-call]
            self.stylesheets: dict[str, str] = {}

        def _init_resources(self, resources: dict[str, Any]) -> dict[str, Any]:
            resources = super()._init_resources(resources)  # type: ignore[no-untyped-call]
            environment = self.environment

            def link_css(name: str) -> markupsafe.Markup:
                source = environment.loader.get_source(environment, name)[0]
                self.stylesheets[_asset_name(name)] = source
                href = f"../{ASSETS_DIR}/{_asset_name(name)}"
                return markupsafe.Markup('<link rel="stylesheet" href="{}">').format(href)

            resources["include_css"] = link_css
            return resources

    return SharedCssExporter(
        template_name="mitosis_trial", extra_template_basedirs=[str(_HTML_DIR)]
    )


def _exporter() -> Any:
    # Building an exporter compiles nbconvert's templates, so each thread keeps one and a
    # sweep reuses it; exporters are not shared between threads, which run them at once.
    exporter = getattr(_local, "exporter", None)
    if exporter is None:
        exporter = _local.exporter = _make_exporter()
    return exporter


def render_header(record: dict[str, Any], has_log: bool) -> str:
    """The HTML header of a trial page: status, parameters, metrics, commit, links."""
    return _header_template().render(record=record, has_log=has_log)


def render_page(notebook: nbformat.NotebookNode, record: dict[str, Any], has_log: bool) -> str:
    """The whole ``trial.html``: header, then the executed notebook with its plots inline."""
    resources = {"mitosis_header": render_header(record, has_log)}
    body, _ = _exporter().from_notebook_node(notebook, resources=resources)
    return str(body)


def write_assets(trials_folder: Path) -> None:
    """Put the stylesheets that pages link to into the trials folder, once."""
    folder = trials_folder / ASSETS_DIR
    for name, source in _exporter().stylesheets.items():
        path = folder / name
        if path.is_file() and path.stat().st_size == len(source.encode("utf-8")):
            continue
        folder.mkdir(exist_ok=True)
        write_atomic(path, source)


def render_missing_notebook(record: dict[str, Any]) -> str:
    """A page for a trial whose notebook never came back (the kernel could not start)."""
    header = render_header(record, has_log=False)
    head = f"<head><meta charset='utf-8'><title>{record['id']}</title></head>"
    return f"<!DOCTYPE html>\n<html>{head}<body>{header}</body></html>\n"
