"""Shared fixtures. Servers the tests need (etcd, the API server) are started by
fixtures on free loopback ports in temp dirs and stopped afterwards."""

pytest_plugins = ["tests.fixtures.etcd", "tests.fixtures.apiserver", "tests.fixtures.runtime"]
