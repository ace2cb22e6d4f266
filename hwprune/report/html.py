"""report.html: the report's Markdown as one self-contained HTML file (images embedded as
data: URIs, no external stylesheet, script or font).

The converter knows the Markdown hwprune writes, not CommonMark: ATX headings, pipe tables
(with an alignment row), image lines ``![caption](path)``, fenced code, ``- `` lists, inline
`` `code` `` and ``**bold**``, and paragraphs. A paragraph laid out with runs of spaces (the
fixed-width tables and indented lists of ``flow.summary``) is kept as preformatted text;
any other paragraph keeps its line breaks. HTML comments (the banner) are dropped.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from hwprune.builddir import staged
from hwprune.resources import banner

HTML_NAME = "report.html"
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)\s*$")
_RULE_ROW = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_COMMENT = re.compile(r"^<!--.*-->$")
_LIST = re.compile(r"^[-*]\s+")

CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; }
th { background: #f0f0f0; }
tr:last-child td { font-weight: bold; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; font-size: .85rem; }
code { background: #f6f6f6; padding: 0 .2rem; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; }
.missing { color: #a00; }
"""


def _inline(text: str) -> str:
    """Escape, then `code` and **bold**."""
    out = []
    for k, part in enumerate(re.split(r"`([^`]*)`", text)):
        part = html.escape(part, quote=False)
        if k % 2:
            out.append(f"<code>{part}</code>")
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part))
    return "".join(out)


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in line.split("|")]


def _table(lines: list[str]) -> str:
    """A pipe table: header, alignment row (``---:`` right-aligned: class num), body."""
    head, rule, body = _cells(lines[0]), _cells(lines[1]), [_cells(x) for x in lines[2:]]
    cls = [' class="num"' if r.endswith(":") and not r.startswith(":") else "" for r in rule]
    cls += [""] * (len(head) - len(cls))
    ths = "".join(f"<th{c}>{_inline(h)}</th>" for h, c in zip(head, cls))
    out = ["<table>", f"<thead><tr>{ths}</tr></thead>", "<tbody>"]
    for row in body:
        row = (row + [""] * len(head))[: len(head)]
        tds = "".join(f"<td{c}>{_inline(v)}</td>" for v, c in zip(row, cls))
        out.append(f"<tr>{tds}</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def _image(alt: str, src: str, base_dir: Path) -> str:
    """A figure whose image is embedded as a data: URI; a missing file or a remote address
    (never fetched: the file must stand alone) becomes a visible note."""
    p = base_dir / src
    mime = MIME.get(p.suffix.lower())
    if "://" in src or mime is None or not p.is_file():
        return (
            f'<p class="missing">[image not embedded: {html.escape(alt)} ({html.escape(src)})]</p>'
        )
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    cap = html.escape(alt)
    return (
        f'<figure><img src="data:{mime};base64,{data}" alt="{cap}">'
        f"<figcaption>{cap}</figcaption></figure>"
    )


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    return bool(
        line.startswith("```")
        or _HEADING.match(line)
        or _IMAGE.match(line)
        or _COMMENT.match(line.strip())
        or (line.startswith("|") and i + 1 < len(lines) and _RULE_ROW.match(lines[i + 1]))
    )


def _fixed_width(lines: list[str]) -> bool:
    return any(x.startswith("  ") or "  " in x.strip() for x in lines)


def markdown_to_html(text: str, base_dir: Path) -> str:
    """The body HTML of hwprune's Markdown ``text``; image paths are relative to
    ``base_dir``."""
    base_dir = Path(base_dir)
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or _COMMENT.match(line.strip()):
            i += 1
        elif line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre>" + html.escape("\n".join(lines[i + 1 : j])) + "</pre>")
            i = j + 1
        elif m := _HEADING.match(line):
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2))}</h{n}>")
            i += 1
        elif m := _IMAGE.match(line):
            out.append(_image(m.group(1), m.group(2), base_dir))
            i += 1
        elif line.startswith("|") and i + 1 < len(lines) and _RULE_ROW.match(lines[i + 1]):
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            out.append(_table(lines[i:j]))
            i = j
        else:
            j = i + 1
            while j < len(lines) and lines[j].strip() and not _starts_block(lines, j):
                j += 1
            block = lines[i:j]
            if _fixed_width(block):
                out.append("<pre>" + html.escape("\n".join(block)) + "</pre>")
            elif all(_LIST.match(x) for x in block):
                items = "".join(f"<li>{_inline(_LIST.sub('', x))}</li>" for x in block)
                out.append(f"<ul>{items}</ul>")
            else:
                out.append("<p>" + "<br>\n".join(_inline(x) for x in block) + "</p>")
            i = j
    return "\n".join(out) + "\n"


def html_document(text: str, base_dir: Path) -> str:
    """A complete, self-contained HTML page of the Markdown ``text``."""
    title = next(
        (m.group(2) for x in text.splitlines() if (m := _HEADING.match(x))), "hwprune report"
    )
    return (
        "<!DOCTYPE html>\n"
        + banner("<!--").replace("\n", " -->\n")
        + '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        + f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + markdown_to_html(text, base_dir)
        + "</body>\n</html>\n"
    )


def write_html(markdown_text: str, build_dir: Path) -> Path:
    """Write build_dir/report.html from the report's Markdown (images linked relative to
    the build directory are embedded); return its path."""
    build_dir = Path(build_dir)
    doc = html_document(markdown_text, build_dir)
    with staged(build_dir) as stage:
        (stage / HTML_NAME).write_text(doc, encoding="utf-8")
    return build_dir / HTML_NAME
