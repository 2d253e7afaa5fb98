"""clear_session resets every auto-name counter, as Keras's."""
import axone
from axone import backend, layers, metrics, random, utils


def test_clear_session_resets_layer_metric_and_seed_generator_names():
    layers.Dense(2)
    metrics.Mean()
    random.SeedGenerator(1)
    before = (layers.Dense(2).name, random.SeedGenerator(1).name)
    assert before[0] != "dense" and before[1] != "seed_generator"
    utils.clear_session()
    assert layers.Dense(2).name == "dense"
    assert random.SeedGenerator(1).name == "seed_generator"
    backend.clear_session(free_memory=False)
    assert axone.Sequential().name == "sequential"
