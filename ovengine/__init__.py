"""ovengine package."""
