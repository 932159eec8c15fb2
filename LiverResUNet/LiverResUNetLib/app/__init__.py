"""The application: one module per headless command, the only code that parses arguments.

Each command module has ``SUMMARY`` (its line in ``--help``), a docstring (its own ``--help`` page),
``add_arguments(parser)`` and ``run(args) -> exit code``; ``run`` turns the parsed arguments into typed values
for the layers below, which never see argparse. The core and the scene bridge are imported when a command
runs, not when the command line is built, so ``--help`` is instant and needs neither torch nor PyYAML.
"""
