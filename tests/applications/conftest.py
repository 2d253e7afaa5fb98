def pytest_configure(config):
    config.addinivalue_line("markers", "slow: the full-size models (224x224 and more, deep "
                                       "variants); deselect with -m 'not slow'")
