"""Reading a written project's C++ back: the product terms of each Dense layer, parsed from
``firmware/parameters.h``. Needs no hls4ml.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from hwprune.errors import HwpruneError
from hwprune.hlsgen.config import _DENSE_MARK, _END_MARK

_PRODUCT = re.compile(r"acc(\d+)\s*\+=\s*x\[(\d+)\]\s*\*\s*weight_t\((-?\d+)(?:LL)?\)\s*;")


# --- reading the emitted C++ back -------------------------------------------------------------


def emitted_dense_terms(hls_dir: Path) -> dict[str, tuple[tuple[int, int, int], ...]]:
    """The (row, column, weight) product terms per Dense op, parsed from the emitted C++.

    Reads ``firmware/parameters.h`` of a project written by ``write_hls_project``. Raises
    ``HwpruneError`` if a Dense config holds a multiplication that is not a recognised term,
    so that a count can never silently miss products.
    """
    params = Path(hls_dir) / "firmware" / "parameters.h"
    if not params.is_file():
        raise HwpruneError(f"{params} is missing; write the project with write_hls_project")
    result: dict[str, tuple[tuple[int, int, int], ...]] = {}
    name, body = None, []
    for line in params.read_text().splitlines():
        if line.startswith(_DENSE_MARK):
            name, body = json.loads(line[len(_DENSE_MARK) :]), []
        elif line.startswith(_END_MARK) and name is not None:
            code = "\n".join(ln.split("//", 1)[0] for ln in body)
            terms = tuple((int(r), int(c), int(w)) for r, c, w in _PRODUCT.findall(code))
            if code.count("*") != len(terms):
                raise HwpruneError(
                    f"{params}: Dense {name!r} has {code.count('*')} multiplications but only "
                    f"{len(terms)} are recognised product terms; was the file edited by hand?"
                )
            result[name] = terms
            name = None
        elif name is not None:
            body.append(line)
    if name is not None:
        raise HwpruneError(f"{params}: the config of Dense {name!r} is not terminated")
    return result


def count_product_terms(hls_dir: Path) -> dict[str, int]:
    """Per Dense op name, the number of product terms in the emitted C++ (not the IR).

    Only Dense ops multiply: Max compares and Threshold compares and adds, so neither is
    listed (they have no weights and no product terms).
    """
    return {name: len(terms) for name, terms in emitted_dense_terms(hls_dir).items()}
