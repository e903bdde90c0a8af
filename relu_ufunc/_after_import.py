"""Run a function right after a module is first imported, without importing
it: how ``import relu_ufunc`` registers with threadpoolctl and registers its
ml_dtypes loops while importing neither.

``after_import(name, callback)`` calls ``callback(module)`` at once if the
module is already imported, else installs a meta path finder that answers
for that one name: it removes itself, asks the other finders for the real
spec, and wraps its loader so that the callback follows executing the
module.  The module ends up with its own loader; other imports pay one
string compare per hook."""
import sys
import warnings


def _call(callback, module):
    try:
        callback(module)
    except Exception as e:  # noqa: BLE001 - never break the user's import
        warnings.warn(f"relu_ufunc: {callback.__doc__ or callback.__name__} failed after "
                      f"importing {module.__name__}: {e!r}", RuntimeWarning, stacklevel=3)


class _Hook:
    def __init__(self, name, callback):
        self.name, self.callback = name, callback

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(name, path, target) if find_spec is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader, self.callback)
        return spec


class _Loader:
    def __init__(self, loader, callback):
        self.loader, self.callback = loader, callback

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps its real loader (inspect, pkgutil and reload use it).
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _call(self.callback, module)


def after_import(name, callback):
    """callback(module) now if `name` is imported, else right after its import."""
    if name in sys.modules:
        _call(callback, sys.modules[name])
    elif not any(isinstance(f, _Hook) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook(name, callback))
