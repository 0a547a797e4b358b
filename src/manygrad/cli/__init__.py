"""The ``manygrad`` command line: ``train``, ``predict``, ``runs`` (and more).

Each subcommand is a module ``manygrad.cli.<name>`` exposing ``add_parser(subparsers)`` and
``run(args) -> int``; ``manygrad.cli.main`` imports only the one being run.
"""
