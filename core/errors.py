"""The one exception type for bad user input: the CLI prints its message and exits 2."""


class UserError(ValueError):
    """Input the user can mend: the message names the problem and, where it can, the fix."""


class UserTypeError(UserError, TypeError):
    """A value of the wrong type (a library caller's ``TypeError``; still one line in the CLI)."""
