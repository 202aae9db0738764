"""The cli wing: the ``orchestrator`` command. Parse arguments, build the config, call one
library function, print; ``main`` maps errors to exit codes. ``parser`` builds the commands'
parser (``options``: the options several commands share) and ``handlers`` holds what each
command does once parsed.

May import every other wing; nothing imports it.
"""
