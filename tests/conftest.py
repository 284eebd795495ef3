"""Shared pytest configuration: fixture modules are registered here, one per area."""

pytest_plugins = ["tests.fixtures.protocol"]
pytest_plugins += ["tests.fixtures.agent"]
pytest_plugins += ["tests.fixtures.engine"]
pytest_plugins += ["tests.fixtures.rest"]
pytest_plugins += ["tests.fixtures.storage"]
pytest_plugins += ["tests.fixtures.engine_storage"]
