"""`python -m catalog` sub-commands: one module each, exposing add_parser() and main()."""
