"""The `tenantguard` command line: one module per subcommand."""
