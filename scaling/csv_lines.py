"""CSV read one physical line per row, as Tipoff's input files are written (a schedule, a trace).

The csv module is lenient where these files must not be: a stray quote runs the lines after it into one
field, read as one row, or fails deep in csv on its field size limit. Here a row that spans lines, and a
quote that does not open and close a field, are refused with the line they start on.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator


def csv_lines(text: str, source: str, error: type[Exception]) -> Iterator[tuple[int, list[str]]]:
    """Each row of `text` with its line number; `error` (naming `source` and the line) on a malformed one."""
    reader = csv.reader(io.StringIO(text), strict=True)
    last = 0
    try:
        for row in reader:
            line, last = last + 1, reader.line_num
            if last != line:
                raise error(f"{source}: line {line}: the row runs on to line {last} (an unmatched quote?)")
            yield line, row
    except csv.Error as exc:
        raise error(f"{source}: line {last + 1}: a quote does not open and close a field: {exc}") from None
