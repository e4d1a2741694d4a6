"""The user-facing error types: a problem with the user's input (config, data, checkpoint, model file), reported
as one line naming the file, line or key, never as a traceback. Light on purpose: the error path of every entry
point imports this module, and postprocess.py must report errors without loading MindSpore."""


class ConfigError(ValueError):
    """A configuration problem: one line naming the file or key."""


class DatasetError(Exception):
    """Data that cannot be used: one line naming the file, and the line or image id."""


class CheckpointError(ValueError):
    """A checkpoint problem, naming the file and the parameter."""


class ExportError(ValueError):
    """An export or model-file problem (format, device, card)."""
