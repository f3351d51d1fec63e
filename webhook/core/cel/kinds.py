"""The kinds a CEL rule may name, with their API group, version and resource.

One table for the rule's ``match.kinds`` (a kind outside it is a load error), the
``request.kind``/``request.resource`` bindings, the ValidatingAdmissionPolicy rendering and
the webhook rules the chart needs for each kind. All are namespaced: tenantguard judges
requests in tenant namespaces, never cluster-scoped objects. Leases, Events and Nodes are
left out on purpose: the webhook never intercepts them.
"""

from __future__ import annotations

from webhook.core.workloads import template_prefix

__all__ = ["KINDS", "POD_CONTROLLERS", "Resource", "resource_of"]

Resource = tuple[str, str, str]  # (group, version, resource)

KINDS: dict[str, Resource] = {
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "ReplicationController": ("", "v1", "replicationcontrollers"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
    "Service": ("", "v1", "services"),
    "ConfigMap": ("", "v1", "configmaps"),
    "Secret": ("", "v1", "secrets"),
    "PersistentVolumeClaim": ("", "v1", "persistentvolumeclaims"),
    "ServiceAccount": ("", "v1", "serviceaccounts"),
    "ResourceQuota": ("", "v1", "resourcequotas"),
    "LimitRange": ("", "v1", "limitranges"),
    "Ingress": ("networking.k8s.io", "v1", "ingresses"),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies"),
    "Role": ("rbac.authorization.k8s.io", "v1", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    "PodDisruptionBudget": ("policy", "v1", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": ("autoscaling", "v2", "horizontalpodautoscalers"),
}

# the kinds judged through their pod template by a rule that names Pod
POD_CONTROLLERS: tuple[str, ...] = tuple(k for k in KINDS if k != "Pod" and template_prefix(k) is not None)


def resource_of(kind: str) -> Resource:
    """(group, version, resource) of ``kind``; an unknown kind gets Kubernetes' default plural, lower case."""
    found = KINDS.get(kind)
    if found is not None:
        return found
    return "", "v1", kind.lower() + "s"
