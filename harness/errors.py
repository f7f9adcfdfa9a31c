"""The one error type the CLI turns into a one-line message and exit status 2."""


class HarnessError(Exception):
    """Bad input: unknown names, bad paths, corrupt files, wrong types. Printed as one line, exit status 2."""

    exit_code = 2
