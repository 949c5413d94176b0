"""Everything that speaks SQL. Knows no sockets and no web framework."""
