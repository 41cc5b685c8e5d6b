"""The one error type the deploy loop raises for bad input; the CLI prints it on one line."""


class DeployInputError(ValueError):
    """Bad deploy input: the message names the file/key and says how to fix it."""

    def __init__(self, source: str, problem: str, fix: str):
        super().__init__(f"{source}: {problem}; {fix}")
