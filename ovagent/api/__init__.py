"""JSON-RPC verb handlers of the agent, one class per namespace."""
