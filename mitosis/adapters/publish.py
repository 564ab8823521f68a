"""Publish an executed notebook as ``trial.html``, with the trial's header above it.

nbconvert's lab template inlines about 270 KB of CSS into every page. Pages here link
to one shared copy in the trials folder's ``_assets/`` instead (a relative link, so a
copied trials folder still browses), which keeps a trial folder small. For the same
reason a page shows each PNG figure from a file beside it, losslessly recompressed as
WebP where Pillow can, instead of a second base64 copy of what ``trial.ipynb`` holds.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import io
import threading
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import nbformat

from mitosis.atomic import write_atomic
from mitosis.event_loops import importing
from mitosis.user_cache import KeptTexts, jinja_bytecode_cache

ASSETS_DIR = "_assets"
_HTML_DIR = Path(__file__).resolve().parent.parent / "html"
# Exporters ready for use. Building one compiles nbconvert's templates, so a sweep reuses
# them; each is used by one thread at a time, since threads render pages at once.
_idle: list[Any] = []
_idle_lock = threading.Lock()
_warming = False  # a warm-up is building an exporter now
# The stylesheets pages link to, by asset name, as the exporters meet them.
_stylesheets: dict[str, str] = {}
# Highlighted code cells, the same trial after trial: the template's and the steps'.
_kept_highlights = KeptTexts("highlight", most=1024)
# The same, as the lab template sanitizes them (bleach parses and rebuilds every tag: a third
# of a page's rendering). Longer HTML (an SVG figure, say) is sanitized every time.
_kept_cleanings = KeptTexts("clean-html", most=1024)
_KEPT_CLEANING_UP_TO = 100_000
_PAPERMILLS_CELL = "injected-parameters"  # the tag of the cell papermill adds
_PLAIN_PYTHON = {"ipython3": "python3", "ipython": "python"}


@lru_cache(maxsize=4)
def _versions(*packages: str) -> tuple[str, ...]:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in packages:
        try:
            found.append(version(package))
        except PackageNotFoundError:
            found.append("")
    return tuple(found)


@lru_cache(maxsize=1)
def _header_template() -> jinja2.Template:
    # Our own environment with autoescape: every user string (variant names, notes,
    # error text) is escaped here, before nbconvert, which escapes nothing of ours.
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HTML_DIR)),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        bytecode_cache=jinja_bytecode_cache(),
    )
    return environment.get_template("trial_header.html.j2")


def _asset_name(template_name: str) -> str:
    return template_name.replace("/", "-")


@lru_cache(maxsize=1)
def _highlighter_class() -> Any:
    from nbconvert.filters.highlight import Highlight2HTML

    class RememberingHighlighter(Highlight2HTML):
        """nbconvert's highlighting, each cell's HTML kept in the user's cache.

        Pages show the same code trial after trial (the template's cells, the steps'),
        and readying IPython's lexer costs a new process about 0.06 CPU-s (importing
        IPython, compiling the lexer's patterns): a process whose cells are all kept never
        imports it. Only papermill's cell of parameters, new in every trial, is highlighted
        each time, as the plain Python it is.
        """

        def __call__(self, source: str, language: str | None = None, metadata: Any = None) -> str:
            highlight = super().__call__
            if _PAPERMILLS_CELL in (metadata or {}).get("tags", ()) and language is None:
                # This cell changes with every trial (it names the trial's folder): kept,
                # it would never be read back. papermill writes it in plain Python, whose
                # lexer spares this process importing IPython for IPython's.
                plain = _PLAIN_PYTHON.get(self.pygments_lexer)
                return str(highlight(source, plain, metadata))  # type: ignore[no-untyped-call]
            made_from = [
                _versions("nbconvert", "pygments", "ipython"),
                language or self.pygments_lexer,
                (metadata or {}).get("magics_language"),
                self.extra_formatter_options,
                source,
            ]
            html = _kept_highlights.get(made_from)
            if html is None:
                html = str(highlight(source, language, metadata))  # type: ignore[no-untyped-call]
                _kept_highlights.put(made_from, html)
            return html

    return RememberingHighlighter


def _clean_html(element: Any) -> str:
    """nbconvert's ``clean_html``, its answers kept in the user's cache."""
    from nbconvert.filters.strings import clean_html

    text = element.decode() if isinstance(element, bytes) else str(element)
    if len(text) > _KEPT_CLEANING_UP_TO:
        return str(clean_html(text))
    made_from = [_versions("nbconvert", "bleach", "tinycss2"), text]
    cleaned = _kept_cleanings.get(made_from)
    if cleaned is None:
        cleaned = str(clean_html(text))
        _kept_cleanings.put(made_from, cleaned)
    return cleaned


def _make_exporter() -> Any:
    from nbconvert import HTMLExporter, TemplateExporter
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    remembering_highlighter = _highlighter_class()

    class SharedCssExporter(HTMLExporter):
        """The lab exporter, linking its stylesheets instead of inlining them, keeping its
        compiled templates and highlighted (and sanitized) code in the user's cache for the
        next process, and leaving two touches of its HTML to the browser."""

        def from_notebook_node(
            self, nb: nbformat.NotebookNode, resources: dict[str, Any] | None = None, **kw: Any
        ) -> tuple[Any, dict[str, Any]]:
            # HTMLExporter's own conversion, less its last pass: it parses the whole page
            # with BeautifulSoup to give images without one an alt text and cells a
            # tabindex, which costs a new process about 0.1 CPU-s (compiling soupsieve's
            # patterns), more than the page. The template's script does the same in the
            # browser, with the same selectors (mitosis_trial/index.html.j2, footer_js).
            info = nb.metadata.get("language_info", {})
            lexer = info.get("pygments_lexer", info.get("name"))
            resources = self._init_resources(resources or {})
            highlighter = remembering_highlighter(pygments_lexer=lexer, parent=self)
            self.register_filter("highlight_code", highlighter)  # type: ignore[no-untyped-call]
            self.register_filter("clean_html", _clean_html)  # type: ignore[no-untyped-call]
            data_type = WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources
            )
            self.register_filter("filter_data_type", data_type)  # type: ignore[no-untyped-call]
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

        def _validate_preprocessor(self, nbc: Any, preprocessor: Any) -> None:
            # nbconvert checks the notebook again after each of its preprocessors, against
            # a relaxed schema whose validator each new process compiles (0.04 CPU-s, a
            # third of a page). Every notebook here was checked against the strict schema
            # as papermill wrote it, and nbconvert's own preprocessors keep it valid.
            pass

        def _create_environment(self) -> jinja2.Environment:
            environment = super()._create_environment()  # type: ignore[no-untyped-call]
            environment.bytecode_cache = jinja_bytecode_cache()
            return environment  # type: ignore[no-any-return]

        def _init_resources(self, resources: dict[str, Any]) -> dict[str, Any]:
            resources = super()._init_resources(resources)  # type: ignore[no-untyped-call]
            environment = self.environment

            def link_css(name: str) -> markupsafe.Markup:
                source = environment.loader.get_source(environment, name)[0]
                _stylesheets[_asset_name(name)] = source
                href = f"../{ASSETS_DIR}/{_asset_name(name)}"
                return markupsafe.Markup('<link rel="stylesheet" href="{}">').format(href)

            resources["include_css"] = link_css
            return resources

    return SharedCssExporter(  # type: ignore[no-untyped-call]
        template_name="mitosis_trial", extra_template_basedirs=[str(_HTML_DIR)]
    )


@contextlib.contextmanager
def _exporter() -> Iterator[Any]:
    with _idle_lock:
        exporter = _idle.pop() if _idle else None
    if exporter is None:
        with importing:  # nbconvert, the first time
            exporter = _make_exporter()
    try:
        yield exporter
    finally:
        with _idle_lock:
            _idle.append(exporter)


def warm_up() -> None:
    """Build an exporter and render a tiny page once, so the real page finds everything ready.

    The first render imports nbconvert, compiles its templates, the notebook schema's
    validator and the syntax highlighter's patterns: about a second, spent while the kernel
    runs the experiment instead of after it.
    """
    # A page with what trial pages hold: markdown, IPython code, text and a figure.
    render_page(nbformat.read(_HTML_DIR / "warm_up.ipynb", as_version=4), {}, beside=())


def warm_up_in_background() -> None:
    """Start ``warm_up`` in a daemon thread, unless an exporter is ready or being built."""
    global _warming
    with _idle_lock:
        if _idle or _warming:
            return
        _warming = True
    threading.Thread(target=_warm_up_quietly, name="mitosis-publish-warm-up", daemon=True).start()


def _warm_up_quietly() -> None:
    global _warming
    try:
        with contextlib.suppress(Exception):  # only a head start: the real page reports problems
            warm_up()
    finally:
        with _idle_lock:
            _warming = False


def render_header(
    record: dict[str, Any], beside: Collection[str], running: Mapping[str, Any] | None = None
) -> str:
    """The HTML header of a trial page: status, parameters, metrics, commit, links.

    ``beside`` names the files in the trial's folder that the header may link to;
    ``running``, for a page of a trial still running, says where it is (``where``), when the
    page was written (``written``) and how often it reloads itself (``reload_s``).
    """
    return _header_template().render(record=record, beside=beside, running=running)


def _title(record: dict[str, Any]) -> str:
    # Tabs, bookmarks and history tell trials apart by this.
    parts = [record.get("experiment"), record.get("id")]
    title = " ".join(str(part) for part in parts if part)
    return f"{title} ({record['status']})" if record.get("status") else title or "trial"


@dataclass(frozen=True)
class Page:
    """A trial's page and the figure files it shows, by file name (beside the page)."""

    html: str
    figures: dict[str, bytes]


@lru_cache(maxsize=1)
def _figure_extension() -> str:
    """What a figure file is, but for a PNG that Pillow cannot make smaller: WebP if it can
    write WebP."""
    try:
        # Importing WebP's plugin registers it; left to look for it, Pillow would import
        # the plugin of its every format first (about 40 modules, 0.02 CPU-s).
        from PIL import WebPImagePlugin, features  # noqa: F401

        return ".webp" if features.check("webp") else ".png"
    except Exception:  # no Pillow, or one without WebP
        return ".png"


def _compact_figure(png: bytes) -> tuple[bytes, str]:
    """The figure as lossless WebP (same pixels, about half the bytes), else the PNG itself."""
    if _figure_extension() != ".webp":
        return png, ".png"
    try:
        from PIL import Image

        with Image.open(io.BytesIO(png)) as image:
            if image.mode not in ("RGB", "RGBA"):
                return png, ".png"
            webp = io.BytesIO()
            # The fastest effort that still halves a plot's PNG: for lossless WebP, quality
            # is effort; method=2 at the default effort saves 15% more bytes at 4x the time.
            image.save(webp, format="webp", lossless=True, method=1, quality=0)
    except Exception:  # a PNG Pillow cannot read: keep it
        return png, ".png"
    data = webp.getvalue()
    return (data, ".webp") if len(data) < len(png) else (png, ".png")


# A figure found in a notebook: its file's name but for the extension, its PNG, and where
# the page looks for the file's name.
_Figure = tuple[str, bytes, dict[str, str]]


def _extract_figures(notebook: nbformat.NotebookNode) -> tuple[Any, list[_Figure]]:
    """A copy of ``notebook`` whose PNG outputs point at files (named as ``_compact_figure``
    most likely names them), and the figures."""
    shown = copy.deepcopy(notebook)  # trial.ipynb keeps its figures exactly as executed
    figures: list[_Figure] = []
    for c, cell in enumerate(shown.cells):
        for o, output in enumerate(cell.get("outputs", [])):
            encoded = output.get("data", {}).get("image/png")
            if not isinstance(encoded, str):
                continue
            try:
                png = base64.b64decode(encoded, validate=False)
            except (binascii.Error, ValueError):
                continue
            names = output.setdefault("metadata", {}).setdefault("filenames", {})
            names["image/png"] = f"figure-{c}-{o}{_figure_extension()}"
            figures.append((f"figure-{c}-{o}", png, names))
    return shown, figures


def _compact_in_background(png: bytes) -> Future[tuple[bytes, str]]:
    """``_compact_figure`` in a thread of its own. Pillow lets go of the GIL as it compresses:
    a figure compresses on one core while the page renders on another."""
    compacted: Future[tuple[bytes, str]] = Future()

    def compact() -> None:
        try:
            compacted.set_result(_compact_figure(png))
        except BaseException as error:  # the page's renderer gets it
            compacted.set_exception(error)

    threading.Thread(target=compact, name="mitosis-figure", daemon=True).start()
    return compacted


def render_page(
    notebook: nbformat.NotebookNode,
    record: dict[str, Any],
    beside: Collection[str],
    running: Mapping[str, Any] | None = None,
) -> Page:
    """The whole ``trial.html``: header, then the executed notebook with its figures.

    With ``running`` (see ``render_header``) it is the page of a trial still running, from
    the notebook so far, and it reloads itself every ``running["reload_s"]`` seconds.
    """
    resources = {
        "mitosis_header": render_header(record, beside, running),
        "mitosis_reload_s": running["reload_s"] if running else None,
    }
    shown, figures = _extract_figures(notebook)
    compacting = [_compact_in_background(png) for _, png, _ in figures]
    shown.metadata["title"] = _title(record)  # the lab template escapes it
    with _exporter() as exporter:
        body, _ = exporter.from_notebook_node(shown, resources=resources)
        files, renamed = {}, False
        for (stem, _, names), compacted in zip(figures, compacting, strict=True):
            data, extension = compacted.result()
            files[stem + extension] = data
            if names["image/png"] != stem + extension:  # a PNG that WebP could not shrink
                names["image/png"], renamed = stem + extension, True
        if renamed:
            body, _ = exporter.from_notebook_node(shown, resources=resources)
    return Page(str(body), files)


def write_assets(trials_folder: Path) -> None:
    """Put the stylesheets that pages link to into the trials folder, once."""
    folder = trials_folder / ASSETS_DIR
    for name, source in list(_stylesheets.items()):
        path = folder / name
        if path.is_file() and path.stat().st_size == len(source.encode("utf-8")):
            continue
        folder.mkdir(exist_ok=True)
        write_atomic(path, source)


def render_missing_notebook(record: dict[str, Any], beside: Collection[str]) -> str:
    """A page for a trial whose notebook never came back (the kernel could not start)."""
    header = render_header(record, beside)
    title = markupsafe.escape(_title(record))
    head = f"<head><meta charset='utf-8'><title>{title}</title></head>"
    return f"<!DOCTYPE html>\n<html lang='en'>{head}<body>{header}</body></html>\n"
