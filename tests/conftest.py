import os

# Keras 3 parity tests run Keras on its PyTorch backend.
os.environ.setdefault("KERAS_BACKEND", "torch")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run the tests marked slow (full-size models); "
                          "AXONE_RUN_SLOW=1 does the same")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: heavy tests (full-size models, long runs), "
                                       "skipped unless --runslow or AXONE_RUN_SLOW=1")


def pytest_collection_modifyitems(config, items):
    import pytest
    if config.getoption("--runslow") or os.environ.get("AXONE_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or AXONE_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
