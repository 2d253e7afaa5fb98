"""summary() sizes its columns to the content: the rows hold what Keras 3's rows hold, and no
parameter count, name or shape entry is cut across two lines."""
import re

import numpy as np
import pytest

import axone
from axone import layers as L


def _axone_text(model, **kw):
    lines = []
    model.summary(print_fn=lines.append, **kw)
    return lines


def _axone_rows(lines):
    """Rows of axone's table as lists of cells, each cell's wrapped lines joined by a space."""
    header = next(l for l in lines if l.lstrip().startswith("Layer (type)"))
    start = lines.index(header)
    rule = lines[start + 1]
    assert set(rule) == {"="}
    end = next(i for i in range(start + 2, len(lines)) if lines[i] and set(lines[i]) == {"="})
    shape_at = header.index("Output Shape") - 1
    param_end = header.index("Param #") + len("Param #")
    conn_at = header.index("Connected to") - 1 if "Connected to" in header else None
    rows, cur = [], None
    for line in lines[start + 2:end] + [""]:
        if not line:
            if cur is not None:
                rows.append([" ".join(p) for p in cur])
            cur = None
            continue
        if cur is None:
            cur = [[] for _ in range(3 if conn_at is None else 4)]
        for m in re.finditer(r"\S+(?: \S+)*", line):
            a, b = m.span()
            if b == param_end:
                col = 2
            elif conn_at is not None and a >= conn_at:
                col = 3
            elif a >= shape_at:
                col = 1
            else:
                col = 0
            cur[col].append(m.group())
    return rows


def _keras_rows(text):
    """Rows of Keras 3's rich table, the same way."""
    rows, cur = [], None
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.split("│")[1:-1]]
            if cur is None:
                cur = [[] for _ in cells]
            for part, c in zip(cur, cells):
                if c:
                    part.append(c)
        elif line.startswith(("├", "└")) and cur is not None:
            rows.append([" ".join(p) for p in cur])
            cur = None
    return rows


def _keras_summary(model):
    out = []
    model.summary(print_fn=out.append, line_length=76)   # within rich's 80-column console
    return "\n".join(out)


def _sequential(ns):
    return ns.Sequential([ns.Input((1400,), name="pixels"),
                          ns.layers.Dense(7200, activation="relu", name="wide"),
                          ns.layers.Dense(10, name="logits")], name="big")


def _functional(ns):
    x = ns.Input((1400,), name="x")
    a = ns.layers.Dense(7200, name="branch_a")(x)
    b = ns.layers.Dense(8, name="branch_b")(x)
    c = ns.layers.Concatenate(name="concat")([a, b])
    return ns.Model(x, ns.layers.Dense(3, name="out")(c), name="two_branch")


@pytest.mark.parametrize("build", [_sequential, _functional], ids=["sequential", "functional"])
def test_rows_match_keras_and_no_count_is_split(build):
    keras = pytest.importorskip("keras")
    ref = _keras_rows(_keras_summary(build(keras)))
    model = build(axone)
    for kw in ({}, {"line_length": 60}, {"line_length": 40}):
        lines = _axone_text(model, **kw)
        assert _axone_rows(lines) == ref, "\n".join(lines)
        counts = [r[2] for r in ref]
        assert "10,087,200" in counts
        for count in counts:          # each count whole on one line of the table
            assert any(re.search(rf"(^|\s){re.escape(count)}(\s|$)", l) for l in lines), "\n".join(lines)


def test_count_of_ten_characters_stays_on_one_line():
    model = axone.Sequential([L.Input((1400,)), L.Dense(7200), L.Dense(10)])
    lines = _axone_text(model)
    row = [l for l in lines if "(None, 7200)" in l]
    assert len(row) == 1 and row[0].endswith(" 10,087,200"), "\n".join(lines)
    # every line of the table the same length budget: rules as long as the widest row
    rules = [l for l in lines if l and set(l) <= {"_", "="}]
    assert len({len(r) for r in rules}) == 1
    assert max(len(l) for l in lines if not l.startswith(("Model:", "Total", "Trainable", "Non"))) \
        <= len(rules[0])


def test_default_width_is_keras_with_the_terminal_limit(monkeypatch):
    model = axone.Sequential([L.Input((4,)), L.Dense(3)])
    monkeypatch.setenv("COLUMNS", "200")
    rules = [l for l in _axone_text(model) if l and set(l) == {"_"}]
    assert len(rules[0]) == 88                      # Keras 3's default for a chain of layers
    monkeypatch.setenv("COLUMNS", "70")
    rules = [l for l in _axone_text(model) if l and set(l) == {"_"}]
    assert len(rules[0]) == 66                      # at most the terminal width less 4
    x = L.Input((4,))
    two = axone.Model(x, L.Add()([L.Dense(3)(x), L.Dense(3)(x)]))
    monkeypatch.setenv("COLUMNS", "200")
    lines = _axone_text(two)
    assert len([l for l in lines if l and set(l) == {"_"}][0]) == 108
    assert "Connected to" in lines[2]


def test_long_names_and_shapes_wrap_at_spaces_not_inside_words():
    x = L.Input((4, 5, 6, 7, 8, 9, 10), name="in")
    y = L.Dense(100, name="a_layer_name_far_longer_than_its_column_would_hold")(x)
    model = axone.Model(x, L.Concatenate(name="cat")([y, L.Dense(2)(x)]))
    lines = _axone_text(model, line_length=50)
    text = "\n".join(lines)
    assert "a_layer_name_far_longer_than_its_column_would_hold" in text    # whole, on one line
    rows = _axone_rows(lines)
    assert rows[0][:3] == ["in (InputLayer)", "(None, 4, 5, 6, 7, 8, 9, 10)", "0"]
    assert rows[1][0] == "a_layer_name_far_longer_than_its_column_would_hold (Dense)"
    assert rows[1][1] == "(None, 4, 5, 6, 7, 8, 9, 100)"
    assert len([l for l in lines if "(None, 4, 5," in l]) == 4         # the shapes wrapped
    for l in lines:                       # each wrapped shape line ends after a comma or ")"
        cell = l[l.index("(None"):].split("   ")[0] if "(None" in l else ""
        assert not cell or cell.endswith((",", ")"))


def test_unbuilt_layer_shows_unbuilt_as_keras():
    model = axone.Sequential([L.Dense(3)])
    rows = _axone_rows(_axone_text(model))
    assert rows[0][2] == "0 (unbuilt)" and rows[0][1] == "?"


def test_bad_positions_are_a_clear_error():
    model = axone.Sequential([L.Input((4,)), L.Dense(3)])
    with pytest.raises(ValueError, match="positions"):
        model.summary(positions=[0.5, 1.0], print_fn=lambda s: None)
    with pytest.raises(ValueError, match="narrower than 4"):
        model.summary(line_length=6, print_fn=lambda s: None)
