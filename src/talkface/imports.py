"""Imports that cost a job's start less: a submodule without the rest of its package (import_alone), and
stand-ins that import a module on first use (Deferred)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def import_alone(name: str) -> types.ModuleType:
    """The module `name`, a submodule of a package, imported without the rest of the package (its
    __init__ and what that imports) when the package is not loaded yet. While the module imports, the
    package is a stand-in (Deferred) that holds only the package's path: another thread that reads
    anything else from it gets the real package. The package imported later is the whole one and uses this
    module, which `from package import module` and `import package.module as m` find, but the package has
    no attribute for it (`package.module.x` fails): the import system set that on the stand-in. For a
    module that imports nothing from its package relatively (an extension module)."""
    package = name.rpartition(".")[0]
    if name in sys.modules or package in sys.modules:
        return importlib.import_module(name)
    spec = importlib.util.find_spec(package)  # imports the package's parents, not the package
    if spec is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(f"no package {package}", name=package)
    stand_in = Deferred(package, (package,))
    stand_in.__path__ = list(spec.submodule_search_locations)
    sys.modules[package] = stand_in
    try:
        return importlib.import_module(name)
    finally:
        if sys.modules.get(package) is stand_in:
            del sys.modules[package]


class Deferred(types.ModuleType):
    """Stands in for a module (and its group: a package and its submodule) until one of its attributes is
    used: then the real modules are imported and the attribute is theirs."""

    def __init__(self, name: str, group: tuple[str, ...]):
        super().__init__(name)
        self._group = group

    def __getattr__(self, attr: str):  # only for what the stand-in lacks: everything but its name
        if attr.startswith("__") and attr != "__path__":
            raise AttributeError(attr)
        for name in self._group:
            if isinstance(sys.modules.get(name), Deferred):
                del sys.modules[name]
        return getattr(importlib.import_module(self.__name__), attr)
