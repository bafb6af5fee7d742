"""Loading what registers itself: the library's own registering modules and every `r3bench.plugins` entry point, once per process."""
import importlib

# The library's own registering packages; tiers (toy2d, stackedmnist) and plug-in packages register
# through the `r3bench.plugins` entry-point group (pyproject.toml), so the library layer never imports
# a tier and a plug-in needs no edit here. Named as strings: the registries (roadmap.registry,
# roadmap.losses) call load_plugins on a lookup, and the registering modules import those registries.
LIBRARY_MODULES = ("roadmap.configs", "roadmap.images")
PLUGIN_GROUP = "r3bench.plugins"
_loaded = False


def load_plugins() -> None:
    """Import LIBRARY_MODULES and every `r3bench.plugins` entry point, once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from importlib.metadata import entry_points

    for module in LIBRARY_MODULES:
        importlib.import_module(module)
    for entry in entry_points(group=PLUGIN_GROUP):
        entry.load()
