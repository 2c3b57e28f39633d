"""Names that do not exist fail only when their line runs; pyflakes finds them without running it.

(A playground callback once used a name from another function's scope: the app caught the
NameError and showed it, and no test reached that line.)
"""

from pathlib import Path

from pyflakes import api, messages, reporter

ROOT = Path(__file__).resolve().parent.parent
UNDEFINED = (messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport)


class _Collect(reporter.Reporter):
    def __init__(self):
        self.found = []

    def flake(self, message):
        if isinstance(message, UNDEFINED):
            self.found.append(str(message))

    def syntaxError(self, filename, msg, lineno, offset, text):
        self.found.append(f"{filename}:{lineno}: {msg}")

    def unexpectedError(self, filename, msg):
        self.found.append(f"{filename}: {msg}")


def test_no_undefined_names():
    collect = _Collect()
    for folder in ("workbench", "apps", "tests", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            api.checkPath(str(path), collect)
    assert not collect.found, "\n".join(collect.found)
