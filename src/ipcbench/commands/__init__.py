"""One module per CLI command. Each defines ``ORDER`` (position in --help), ``register(subparsers)``
which adds its parser and sets ``func``; ``func(args) -> int`` does the work. Commands only parse and
call: the work lives in the library modules."""
