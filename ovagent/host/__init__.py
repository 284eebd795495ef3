"""Host-level facts and statistics (/proc, /sys, capabilities)."""
