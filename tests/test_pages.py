"""A trial's page shows each figure from a file beside it: lossless WebP where that is
smaller than the PNG the kernel drew, the PNG itself otherwise, the same pixels either way."""

from __future__ import annotations

import base64
import io

import nbformat
from PIL import Image, ImageDraw

from mitosis.adapters import publish


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="png")
    return out.getvalue()


def _plot() -> bytes:
    """What matplotlib draws: RGBA, mostly white, a few lines."""
    image = Image.new("RGBA", (320, 200), "white")
    draw = ImageDraw.Draw(image)
    for offset in range(0, 200, 20):
        draw.line([(0, offset), (320, 200 - offset)], fill=(31, 119, 180, 255), width=2)
    return _png(image)


def _grey() -> bytes:
    """A greyscale image, which is not compressed again."""
    image = Image.new("L", (64, 64))
    image.putdata([(x * 7 + y * 13) % 256 for y in range(64) for x in range(64)])
    return _png(image)


def _notebook(*pngs: bytes) -> nbformat.NotebookNode:
    outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure>"},
        )
        for png in pngs
    ]
    cell = nbformat.v4.new_code_cell("plot()", id="plot", execution_count=1, outputs=outputs)
    language = {"name": "python", "pygments_lexer": "ipython3"}
    return nbformat.v4.new_notebook(cells=[cell], metadata={"language_info": language})


def _pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGBA").tobytes()  # an opaque RGBA plot comes back as RGB


def test_each_figure_is_a_file_the_page_names_with_the_pixels_drawn() -> None:
    plot, grey = _plot(), _grey()
    record = {"id": "20250101-000000-abcdef", "experiment": "toy", "status": "succeeded"}

    page = publish.render_page(_notebook(plot, grey, plot), record, beside=())

    assert sorted(page.figures) == ["figure-0-0.webp", "figure-0-1.png", "figure-0-2.webp"]
    assert len(page.figures["figure-0-0.webp"]) < len(plot)
    assert page.figures["figure-0-1.png"] == grey
    drawn = {"figure-0-0.webp": plot, "figure-0-1.png": grey, "figure-0-2.webp": plot}
    for name, data in page.figures.items():
        assert f'src="{name}"' in page.html
        assert _pixels(data) == _pixels(drawn[name])
    assert "data:image/png;base64" not in page.html
