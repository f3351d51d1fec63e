"""The watch-backed cluster view (list+watch with the official kubernetes client).

Sits above the pure core: implements ``webhook.core.cluster_state.ClusterState``
for the server. See docs/cluster-view.md.
"""

from webhook.cluster.reflector import ReflectorSettings
from webhook.cluster.store import ClusterStore
from webhook.cluster.view import ViewSettings, WatchedClusterState, open_cluster_view

__all__ = ["ClusterStore", "ReflectorSettings", "ViewSettings", "WatchedClusterState", "open_cluster_view"]
