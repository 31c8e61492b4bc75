"""One registry helper: the classes (or builders) of a config option, by name, each added by a decorator where it is
defined; a name that is not registered is one ConfigError line naming the choices."""

from __future__ import annotations


class Registry(dict):
    """name -> entry, for the config key `key` (e.g. "schedule.name"); `what` names an entry in messages; `group`:
    the config group whose schemas `register(name, schema=...)` adds to Hydra's (bench.config.register_option)."""

    def __init__(self, key: str, what: str, group: str | None = None):
        super().__init__()
        self.key, self.what, self.group = key, what, group

    def register(self, name: str, schema: type | None = None):
        """Decorator: the entry of `key`=name; `schema`, its config dataclass, is registered with Hydra."""

        def add(entry):
            if name in self and self[name] is not entry:
                raise ValueError(f"{self.what} {name!r} registered twice ({self[name].__name__}, {entry.__name__})")
            self[name] = entry
            if schema is not None:
                from bench.config import register_option

                register_option(self.group, name, schema)
            return entry

        return add

    def lookup(self, name: str, *fallbacks: str):
        """The entry of `name` (else of the first registered fallback); ConfigError naming the choices."""
        for candidate in (name, *fallbacks):
            if candidate in self:
                return self[candidate]
        from bench.errors import ConfigError

        raise ConfigError(f"{self.key}={name}: no {self.what} of that name (one of {', '.join(sorted(self))})")
