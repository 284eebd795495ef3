"""REST resources, one module per collection; each has add_routes(Routes)."""
