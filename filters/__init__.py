"""Filter plugins. Each module is one hub4com filter; see `hub4com --help`."""
