"""PostgreSQL access: embedded cluster, pool, migrations, repositories."""
