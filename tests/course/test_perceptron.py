"""Course 004 chapter 1: the perceptron, its OR trace, and XOR (SPEC §7)."""
import warnings

import numpy as np
import pytest

import axone
from axone import layers
from axone.models import Perceptron

X_LOGIC = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
D_OR = np.array([0, 1, 1, 1])
D_XOR = np.array([0, 1, 1, 0])

# The course's table (iteration, w1, w2, b before, x1, x2, d, Y, f(Y), w1, w2, b after), rows
# 1-13 as printed; row 9 prints f(Y) = 0 for Y = 0, contradicting its own rule f(Y) = 1 if Y ≥ 0
# and its own update (b: 0 → −1), so f(Y) = 1 is expected there.
COURSE_TABLE = [
    (1, 1, -1, 0, 0, 0, 0, 0, 1, 1, -1, -1),
    (2, 1, -1, -1, 0, 1, 1, -2, 0, 1, 0, 0),
    (3, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 0),
    (4, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0),
    (5, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, -1),
    (6, 1, 0, -1, 0, 1, 1, -1, 0, 1, 1, 0),
    (7, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0),
    (8, 1, 1, 0, 1, 1, 1, 2, 1, 1, 1, 0),
    (9, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, -1),
    (10, 1, 1, -1, 0, 1, 1, 0, 1, 1, 1, -1),
    (11, 1, 1, -1, 1, 0, 1, 0, 1, 1, 1, -1),
    (12, 1, 1, -1, 1, 1, 1, 1, 1, 1, 1, -1),
    (13, 1, 1, -1, 0, 0, 0, -1, 0, 1, 1, -1),
]


def _or_perceptron():
    p = Perceptron(learning_rate=1.0)
    history = p.fit(X_LOGIC, D_OR, initial_weights=[1, -1], initial_bias=0.0, max_epochs=20)
    return p, history


def test_or_trace_matches_the_course_table():
    p, _ = _or_perceptron()
    for row, expected in zip(p.trace, COURSE_TABLE):
        got = ((row["iteration"],) + tuple(row["weights_before"]) + (row["bias_before"],)
               + tuple(row["x"]) + (row["d"], row["y"], row["out"]) + tuple(row["weights"])
               + (row["bias"],))
        assert got == expected, (row["iteration"], got, expected)


def test_or_last_update_at_iteration_9_stop_after_16():
    p, history = _or_perceptron()
    assert p.last_update == 9
    assert p.iterations == 16 and len(p.trace) == 16
    assert p.converged and p.epochs == 4
    assert [r["iteration"] for r in p.trace if r["updated"]][-1] == 9
    assert not any(r["updated"] for r in p.trace[12:])          # iterations 13-16: no change
    kernel, bias = p.get_weights()
    assert kernel.shape == (2, 1) and bias.shape == (1,)
    np.testing.assert_array_equal(kernel[:, 0], [1, 1])
    np.testing.assert_array_equal(bias, [-1])
    assert history.history["errors"] == [2, 2, 1, 0]
    assert history.epoch == [0, 1, 2, 3]
    assert history.model is p and p.history is history
    np.testing.assert_array_equal(p.predict(X_LOGIC)[:, 0], D_OR)
    assert p.predict(X_LOGIC).shape == (4, 1)
    assert p.evaluate(X_LOGIC, D_OR) == 1.0


def test_trace_table_prints_the_course_rows():
    p, _ = _or_perceptron()
    table = p.trace_table()
    lines = table.splitlines()
    assert lines[0].split() == ["it", "w1", "w2", "b", "x1", "x2", "d", "Y", "f(Y)", "w1", "w2", "b"]
    rows = {int(l.split()[0]): l.split() for l in lines[2:] if l.split() and l.split()[0].isdigit()}
    assert rows[0] == ["0"] + ["-"] * 8 + ["1", "-1", "0"]
    for expected in COURSE_TABLE:
        assert rows[expected[0]] == [str(v) for v in expected]
    assert max(rows) == 16
    assert "last update at iteration 9" in table


def test_heaviside_at_zero_and_bias_update():
    # Y = 0 exactly gives f(Y) = 1; a wrong output moves the bias by η(d − out)
    p = Perceptron(learning_rate=0.5)
    p.fit([[0.0]], [0], initial_weights=[0.0], initial_bias=0.0, max_epochs=1)
    first = p.trace[0]
    assert first["y"] == 0.0 and first["out"] == 1.0
    assert first["bias"] == -0.5 and first["weights"][0] == 0.0


def test_xor_is_not_learned_by_the_perceptron():
    p = Perceptron(learning_rate=1.0)
    with pytest.warns(RuntimeWarning, match="no convergence"):
        history = p.fit(X_LOGIC, D_XOR, initial_weights=[0, 0], initial_bias=0.0, max_epochs=50)
    assert not p.converged
    assert p.epochs == 50 and p.iterations == 200
    assert min(history.history["errors"]) > 0
    assert p.evaluate(X_LOGIC, D_XOR) < 1.0


def test_xor_is_learned_by_a_two_hidden_unit_mlp():
    axone.utils.set_random_seed(0)
    model = axone.Sequential([layers.Input((2,)), layers.Dense(2, activation="tanh"),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=axone.optimizers.Adam(0.1), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(X_LOGIC.astype("float32"), D_XOR.astype("float32"), epochs=300, batch_size=4,
              verbose=0)
    assert model.count_params() == 9
    pred = model.predict(X_LOGIC.astype("float32"), verbose=0)[:, 0]
    np.testing.assert_array_equal(pred > 0.5, D_XOR.astype(bool))


def test_fit_continues_from_current_weights_and_random_start_is_seeded():
    p, _ = _or_perceptron()
    p.fit(X_LOGIC, D_OR)                    # already separates OR: one epoch, no change
    assert p.converged and p.iterations == 4 and p.last_update == 0
    q1, q2 = Perceptron(), Perceptron()
    axone.utils.set_random_seed(3)
    q1.fit(X_LOGIC, D_OR)
    axone.utils.set_random_seed(3)
    q2.fit(X_LOGIC, D_OR)
    np.testing.assert_array_equal(q1.get_weights()[0], q2.get_weights()[0])
    np.testing.assert_array_equal(q1.predict(X_LOGIC)[:, 0], D_OR)


def test_set_weights_roundtrip_and_checks():
    p = Perceptron()
    assert p.get_weights() == []
    with pytest.raises(ValueError, match="fit"):
        p.predict(X_LOGIC)
    p.set_weights([np.array([[1.0], [1.0]]), np.array([-1.0])])
    np.testing.assert_array_equal(p.predict(X_LOGIC)[:, 0], D_OR)
    np.testing.assert_array_equal(p.decision_function(X_LOGIC)[:, 0], [-1, 0, 0, 1])
    with pytest.raises(ValueError, match="2 inputs"):
        p.set_weights([np.ones((3, 1)), np.zeros(1)])
    with pytest.raises(ValueError, match="bias of shape"):
        p.set_weights([np.ones((2, 1)), np.zeros(2)])
    with pytest.raises(ValueError, match="kernel"):
        Perceptron().set_weights([np.ones((2, 2)), np.zeros(1)])
    with pytest.raises(ValueError, match="2 inputs"):
        p.predict(np.ones((4, 3)))


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"d": [0, 1, 2, 1]}, ValueError, "d must hold binary classes"),
    ({"d": [0, 0.5, 1, 1]}, ValueError, "d must hold binary classes"),
    ({"d": [0, 1, 1]}, ValueError, "4 samples but d has 3"),
    ({"d": [[0, 1], [1, 1], [0, 0], [1, 0]]}, ValueError, "d .the desired classes"),
    ({"x": [0, 1, 1, 0]}, ValueError, "rank 2"),
    ({"x": np.zeros((4, 2, 1))}, ValueError, "rank 2"),
    ({"x": [["a", "b"]] * 4}, TypeError, "x must hold numbers"),
    ({"x": [[0, np.nan], [0, 1], [1, 0], [1, 1]]}, ValueError, "NaN"),
    ({"initial_weights": [1, -1, 0]}, ValueError, "initial_weights must have length 2"),
    ({"initial_weights": [[1, -1]]}, ValueError, "initial_weights must have length 2"),
    ({"initial_bias": "0"}, TypeError, "initial_bias must be a number"),
    ({"max_epochs": 0}, ValueError, "max_epochs"),
    ({"max_epochs": 2.5}, ValueError, "max_epochs"),
])
def test_fit_bad_input(kwargs, exc, match):
    args = {"x": X_LOGIC, "d": D_OR}
    args.update(kwargs)
    x, d = args.pop("x"), args.pop("d")
    with pytest.raises(exc, match=match):
        Perceptron().fit(x, d, **args)


@pytest.mark.parametrize("lr, exc", [(0, ValueError), (-0.1, ValueError), ("1", TypeError),
                                     (True, TypeError), (float("nan"), ValueError)])
def test_learning_rate_checked(lr, exc):
    with pytest.raises(exc, match="learning_rate"):
        Perceptron(learning_rate=lr)


def test_learning_rate_scales_the_updates():
    # from zero weights, η only scales w and b: the trajectory for η = 0.5 is half of η = 1
    a, b = Perceptron(1.0), Perceptron(0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a.fit(X_LOGIC, D_OR, initial_weights=[0, 0], initial_bias=0.0)
        b.fit(X_LOGIC, D_OR, initial_weights=[0, 0], initial_bias=0.0)
    assert a.iterations == b.iterations
    np.testing.assert_array_equal(a.get_weights()[0] * 0.5, b.get_weights()[0])
    np.testing.assert_array_equal(a.get_weights()[1] * 0.5, b.get_weights()[1])


def test_verbose_prints_one_line_per_epoch(capsys):
    Perceptron().fit(X_LOGIC, D_OR, initial_weights=[1, -1], initial_bias=0.0, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("Epoch 1: 2 change(s)")
    assert lines[-1] == "Epoch 4: 0 change(s), weights [1.0, 1.0], bias -1"
