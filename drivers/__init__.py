"""Driver plugins. Each module is one hub4com driver; see `hub4com --help`."""
