"""Hydra search-path plugin: makes dse's config groups (conf/) visible to every primary
config, so studies in sweeps/ (``python -m dse -cd sweeps -cn <study>``) compose from them."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class DseSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from dse.config import CONF_DIR

        search_path.append(provider="dse", path=f"file://{CONF_DIR}")
