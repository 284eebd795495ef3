"""Authentication, authorization, accounting: users, passwords, roles, permissions."""
