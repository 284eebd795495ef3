"""The protocol spine shared by ovengine, ovagent and ovagent-client.

stomp/    sans-IO STOMP 1.2 codec
jsonrpc/  JSON-RPC 2.0 messages, batches and the error-code table
schema/   the verb schema (*.yml), its loader, validator and handler registry
transport asyncio + TLS shells around the codec (server broker and client)
rpc       the RPC client (correlation, timeouts, reconnect) and server dispatch
pki       CA and certificate helpers
"""
