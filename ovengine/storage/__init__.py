"""The engine's storage runtime: storage pools and their SPM, host
connections to storage, domain monitoring, storage tasks."""
