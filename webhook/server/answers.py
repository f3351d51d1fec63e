"""Answers to reviews that repeat: the pods of one ReplicaSet (or Job, or DaemonSet) share a spec.

A ReplicaSet of 50 pods sends 50 CREATE reviews that differ only in their uid (and, for a
StatefulSet, the pod's name): each would be evaluated from scratch. :class:`AnswerCache`
remembers the answer of an evaluation and gives it again, with the new uid, for a review
that cannot be judged differently. A review is cacheable only when its answer is a function
of what the key holds:

- the endpoint (``/mutate`` or ``/validate``), the policy generation, the namespace and its
  labels (they decide the tenant), the operation (CREATE only: an UPDATE depends on the old
  object), the user and groups (exemptions), today's date (exemptions expire);
- the object, without the members that never change a verdict or a patch (its name and uid,
  resourceVersion, creationTimestamp, managedFields, generation);
- and, on ``/validate``, no policy that applies in the namespace (the cluster policies and
  its tenant's, exempt or not) may judge with the cluster view (tenant quota against live
  usage, network isolation against the namespace's NetworkPolicies, affinity against other
  namespaces' labels: ``Validator.reads_cluster``): those verdicts change with the cluster,
  and an admitted creation there must be recorded, which a cached answer would skip.

The cache is bounded (least recently used out first) and belongs to one server process; a
policy reload changes the generation, so older answers are never found again. A property
test checks that a cached answer equals a fresh one.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from webhook.core.decision import Decision
from webhook.core.plan import PolicySet, TenantConflict
from webhook.core.request import AdmissionRequest
from webhook.core.wire import AdmissionResponseBody
from webhook.core.workloads import locate_pod

# members of an object's metadata that never change a verdict or a patch
VOLATILE = ("name", "uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink")
ANSWERS = 4096


@dataclass(frozen=True, slots=True)
class Cached:
    """What one evaluation answered: the response without its uid, and the decision behind it."""

    response: AdmissionResponseBody
    decision: Decision


def _object_key(obj: Mapping[str, Any]) -> bytes:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and any(k in meta for k in VOLATILE):
        meta = {k: v for k, v in meta.items() if k not in VOLATILE}
        obj = {**obj, "metadata": meta}
    return orjson.dumps(obj)


class AnswerCache:
    def __init__(self, size: int = ANSWERS):
        self.size = size
        self._answers: OrderedDict[Hashable, Cached] = OrderedDict()
        self._lock = threading.Lock()  # large reviews are answered in threads too
        self.hits = 0
        self.misses = 0

    def key(self, endpoint: str, request: AdmissionRequest, policies: PolicySet,
            labels: Mapping[str, str] | None) -> Hashable | None:
        """The cache key of ``request``, or None when its answer may not be reused (see the module doc)."""
        obj = request.obj
        if request.operation != "CREATE" or request.subresource or not isinstance(obj, dict) or \
                locate_pod(obj) is None:
            return None
        if endpoint == "validate":
            try:
                tenant = policies.tenant_for(request.namespace, labels)
            except TenantConflict:
                return None
            # the policies that apply here, exempt or not (an exempt creation still counts in a quota)
            if any(p.reads_cluster(obj) for p in policies.cluster) or (
                    tenant is not None and tenant.reads_cluster(obj)):
                return None
        try:
            # a 128-bit digest stands for the object: a key costs 16 bytes, not the object's size
            body = hashlib.blake2b(_object_key(obj), digest_size=16).digest()
        except TypeError:  # not JSON-shaped (never from a decoded body)
            return None
        return (endpoint, policies.generation, request.namespace,
                tuple(sorted(labels.items())) if labels else None, request.username, request.groups,
                request.today, request.api_version, body)

    def get(self, key: Hashable) -> Cached | None:
        with self._lock:
            found = self._answers.get(key)
            if found is None:
                self.misses += 1
                return None
            self._answers.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: Hashable, response: AdmissionResponseBody, decision: Decision) -> None:
        stored = {k: v for k, v in response.items() if k != "uid"}
        kept = replace(decision, results=[], mutated=None)  # no object held, every other field kept
        with self._lock:
            self._answers[key] = Cached(stored, kept)  # type: ignore[arg-type]
            if len(self._answers) > self.size:
                self._answers.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
