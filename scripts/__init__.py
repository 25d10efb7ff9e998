"""Scripts run from the command line; a package so the tests can import them."""
