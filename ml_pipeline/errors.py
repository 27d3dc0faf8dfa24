"""Errors a pipeline step reports to its user as one line, never as a traceback."""


class PipelineInputError(Exception):
    """The input (data, params, model directory) cannot be used; exit code 2."""
