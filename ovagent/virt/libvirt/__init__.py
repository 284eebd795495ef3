"""The only package that imports libvirt (see boundary.py for the thread rules)."""
