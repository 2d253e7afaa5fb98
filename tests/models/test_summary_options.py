"""summary(expand_nested=, show_trainable=, layer_range=) take effect as in Keras 3."""
import pytest

from axone import layers as L
from axone.models import Sequential

from .test_summary_layout import _keras_rows


def _text(model, **kw):
    lines = []
    model.summary(print_fn=lines.append, **kw)
    return "\n".join(lines)


def _build(ns):
    inner = ns.Sequential([ns.layers.Dense(4, name="inner_a"), ns.layers.Dense(3, name="inner_b")],
                          name="block")
    model = ns.Sequential([ns.Input((5,)), ns.layers.Dense(6, name="first"), inner,
                           ns.layers.Dropout(0.1, name="drop"), ns.layers.Dense(2, name="last")],
                          name="outer")
    model.get_layer("first").trainable = False
    return model


def _keras_first_cells(model, **kw):
    out = []
    model.summary(print_fn=out.append, line_length=76, **kw)
    return _keras_rows("\n".join(out))


def _keras():
    return pytest.importorskip("keras")


def test_layer_range_selects_the_rows_keras_selects():
    keras = _keras()
    ref = [r[0].split(" ")[0] for r in _keras_first_cells(_build(keras), layer_range=("block", "drop"))]
    text = _text(_build(__import__("axone")), layer_range=("block", "drop"))
    assert ref == ["block", "drop"]
    assert "block (Sequential)" in text and "drop (Dropout)" in text
    assert "first (Dense)" not in text and "last (Dense)" not in text


def test_show_trainable_column_as_keras():
    keras = _keras()
    ref = [r[-1] for r in _keras_first_cells(_build(keras), show_trainable=True)]
    text = _text(_build(__import__("axone")), show_trainable=True)
    assert "Trainable" in text
    rows = [l for l in text.splitlines() if "(" in l and ")" in l and not l.startswith("Model")
            and not l.lstrip().startswith("Layer (type)")
            and not l.startswith(("Total", "Trainable params", "Non-trainable"))]
    assert [l.split()[-1] for l in rows] == ref == ["N", "Y", "-", "Y"]


def test_expand_nested_lists_the_inner_layers():
    keras = _keras()
    ref = [r[0].replace("└", "").split(" (")[0].strip()
           for r in _keras_first_cells(_build(keras), expand_nested=True)]
    text = _text(_build(__import__("axone")), expand_nested=True)
    assert ref == ["first", "block", "inner_a", "inner_b", "drop", "last"]
    assert "└ inner_a (Dense)" in text and "└ inner_b (Dense)" in text
    assert "inner_a" not in _text(_build(__import__("axone")))


@pytest.mark.parametrize("bad", [("first",), ("first", 3), ("nope", "last")])
def test_bad_layer_range(bad):
    with pytest.raises(ValueError, match="layer_range"):
        _build(__import__("axone")).summary(layer_range=bad, print_fn=lambda *_: None)
