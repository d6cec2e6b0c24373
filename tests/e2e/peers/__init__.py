"""Reference peers the end-to-end tests run as separate processes."""
