"""One module per ``scns`` sub-command; each exposes ``add_parser(subparsers)``."""
