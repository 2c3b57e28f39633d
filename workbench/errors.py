"""The base class of every error the workbench raises for bad input (a name, a value, a file).

Each message names the problem and the valid choices; the CLI prints it without a traceback.
It subclasses ValueError so callers that catch ValueError keep working.
"""


class WorkbenchError(ValueError):
    pass
