"""Name -> factory registries for backbones, necks, heads and whole detectors.

A new backbone is one file with `@register_backbone("name")` on its factory, plus its import in
`src/models/backbones/__init__.py`.
"""


class Registry:
    def __init__(self, kind):
        self.kind = kind
        self._factories = {}

    def register(self, name):
        def wrap(factory):
            if name in self._factories:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._factories[name] = factory
            return factory
        return wrap

    def get(self, name):
        if name not in self._factories:
            raise KeyError(f"unknown {self.kind} '{name}'; registered: {', '.join(sorted(self._factories))}")
        return self._factories[name]

    def names(self):
        return sorted(self._factories)


BACKBONES = Registry("backbone")
MODELS = Registry("model")

register_backbone = BACKBONES.register
register_model = MODELS.register
