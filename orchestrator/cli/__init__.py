"""The cli wing: the ``orchestrator`` command. Parse arguments, build the config, call one
library function, print; ``main`` maps errors to exit codes.

May import every other wing; nothing imports it.
"""
