"""The lab: several real hosts on one machine, in network namespaces."""
