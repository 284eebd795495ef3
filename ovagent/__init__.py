"""ovagent package."""
