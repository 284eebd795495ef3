"""The REST API (oVirt API v4 paths, XML and JSON), SSO and the event stream."""
