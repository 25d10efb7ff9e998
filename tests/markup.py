"""What must hold of any page's markup: each element it names by id is there.

A screen reader reads an input's description from the elements its aria-describedby names, and a label
names its input by `for`; a name that matches nothing (or matches two elements) silently loses the link.
"""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

# What a label's `for` may name (HTML's labelable elements); a hidden input is not one.
LABELABLE = frozenset({"button", "input", "meter", "output", "progress", "select", "textarea"})
ID_LIST_ATTRIBUTES = ("aria-describedby", "aria-labelledby")


class _Elements(HTMLParser):
    """Every element's tag and attributes, in page order."""

    def __init__(self, body: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.feed(body)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {name: value or "" for name, value in attrs}))


def broken_references(body: str) -> list[str]:
    """Each name by id in `body` that reaches no element, or more than one: an id given twice, an id in an
    aria-describedby or aria-labelledby that no element has, and a label's `for` that names no form control."""
    elements = _Elements(body).found
    given = Counter(attrs["id"] for _, attrs in elements if "id" in attrs)
    controls = {attrs.get("id") for tag, attrs in elements if tag in LABELABLE and attrs.get("type") != "hidden"}
    problems = [f"id {name!r} is given {count} times" for name, count in given.items() if count > 1]
    for tag, attrs in elements:
        for attribute in ID_LIST_ATTRIBUTES:
            missing = [name for name in attrs.get(attribute, "").split() if name not in given]
            where = f"<{tag} name={attrs.get('name')!r}> {attribute}"
            problems += [f"{where} names {name!r}: no such id" for name in missing]
        if tag == "label" and "for" in attrs and attrs["for"] not in controls:
            problems.append(f"<label for={attrs['for']!r}> names no form control")
    return problems


def out_of_band_ids(fragment: str) -> list[str]:
    """The ids of the elements an htmx answer swaps in out of band: each replaces the page's element with its id."""
    return [attrs.get("id", "") for _, attrs in _Elements(fragment).found if "hx-swap-oob" in attrs]


def ids(body: str) -> set[str]:
    """Every id the page gives."""
    return {attrs["id"] for _, attrs in _Elements(body).found if "id" in attrs}


def controls(body: str) -> dict[str, dict[str, str]]:
    """Each named form control's attributes, by the control's name."""
    return {attrs["name"]: attrs for tag, attrs in _Elements(body).found if tag in LABELABLE and "name" in attrs}


def descriptions(body: str) -> dict[str, list[str]]:
    """The ids each named form control's aria-describedby lists, by the control's name."""
    return {name: attrs.get("aria-describedby", "").split() for name, attrs in controls(body).items()}


def by_id(body: str) -> dict[str, dict[str, str]]:
    """Each element's attributes, by its id."""
    return {attrs["id"]: attrs for _, attrs in _Elements(body).found if "id" in attrs}


class _Labelling(HTMLParser):
    """Each form control a person fills in, and whether anything names it: a label around it or naming it by
    `for`, or an aria-label or aria-labelledby. A placeholder is not a name: it goes once something is typed."""

    FILLED = frozenset({"input", "select", "textarea"})
    NOT_FILLED = frozenset({"hidden", "submit", "button", "reset", "image"})

    def __init__(self, body: str) -> None:
        super().__init__()
        self.open_labels = 0
        self.label_for: set[str] = set()
        self.controls: list[tuple[dict[str, str], bool]] = []  # (attributes, inside a label)
        self.headings: Counter[str] = Counter()
        self.feed(body)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        self.headings[tag] += tag in {"h1", "h2", "h3"}
        if tag == "label":
            self.open_labels += 1
            if "for" in found:
                self.label_for.add(found["for"])
        elif tag in self.FILLED and found.get("type", "text") not in self.NOT_FILLED:
            self.controls.append((found, self.open_labels > 0))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.open_labels = max(0, self.open_labels - 1)


def unlabelled_controls(body: str) -> list[str]:
    """The names of the fields in `body` that nothing labels (a placeholder alone does not)."""
    page = _Labelling(body)
    return [
        attrs.get("name", "?")
        for attrs, wrapped in page.controls
        if not (wrapped or attrs.get("id") in page.label_for or attrs.get("aria-label") or attrs.get("aria-labelledby"))
    ]


def heading_count(body: str, tag: str = "h1") -> int:
    return _Labelling(body).headings[tag]
