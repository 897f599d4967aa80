"""Markers of the hyperopt tests."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "venv: builds a fresh virtualenv (minutes); runs with ATO_TEST_VENV=1, "
                   "as `nox -s torch_extra` does")
